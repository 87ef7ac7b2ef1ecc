"""A real Orthanc with its DICOMweb plugin on loopback ports, for the STOW-RS and PACS tests.

Orthanc is what we do not ship: it stands for the PACS. Started from the Debian packages ``orthanc`` and
``orthanc-dicomweb`` (installed by ``.ci/run``); skipped with a reason where they are absent (failed under
``CI=true``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import require_tool

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    """One Orthanc in ``folder`` (storage kept across :meth:`stop` / :meth:`start`).

    Attributes:
        folder: its configuration, storage and log.
        users: HTTP basic users (``{}``: no authentication).
        http_port, dicom_port: its loopback ports.
        aet: its AE title.
    """

    folder: Path
    users: dict[str, str] = field(default_factory=dict)
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    aet: str = "ORTHANC"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The DICOMweb root."""
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until its HTTP server answers."""
        exe = require_tool("Orthanc", "orthanc")
        if not DICOMWEB_PLUGIN.is_file():
            reason = f"{DICOMWEB_PLUGIN} not found (install the Debian package orthanc-dicomweb)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true: {reason}")
            pytest.skip(reason)
        config = {
            "Name": "imc-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "OverwriteInstances": True,  # a rerun's SR (same UIDs) replaces the first one
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        with open(self.folder / "orthanc.log", "ab") as log:
            self.process = subprocess.Popen(
                [exe, str(self.folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/system", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # 401: up, with authentication
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    "Orthanc did not start:\n" + (self.folder / "orthanc.log").read_text(errors="replace")
                )
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop it (its storage stays)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

"""Settings of ``monai-imc serve``, validated before anything loads.

A listener (C-STORE SCP), a DICOMweb pull source, a destination (STOW-RS or C-STORE SCU) and the durable
queue's limits. Secure by default: the listener only accepts the calling AE titles it is given (at least
one), binds to loopback unless told otherwise; DICOMweb credentials come from an environment variable or a
file (never from a URL or the command line), travel only over https (or to a loopback host), and never
appear in a log or a report (:meth:`DicomwebSettings.public` is what is shown).

Usage::

    settings = ServeSettings(output=Path("out"), listener=ListenerSettings(port=11112,
                             allowed_calling=("ORTHANC",)), destination=DicomwebSettings("http://..."))
    settings.validate()
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monai_imc.deploy.stow import check_url, public_url

if TYPE_CHECKING:
    import requests

__all__ = [
    "CStoreSettings",
    "DicomwebSettings",
    "ListenerSettings",
    "PullSettings",
    "ServeSettings",
    "check_ae_title",
]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_ae_title(title: str, what: str) -> str:
    """A valid AE title (1-16 printable ASCII characters, no backslash), stripped.

    Raises:
        ValueError: naming ``what`` and the title.
    """
    value = title.strip()
    if not value or len(value) > 16 or "\\" in value or not all(32 <= ord(c) < 127 for c in value):
        raise ValueError(f"{what}: {title!r} is not an AE title (1-16 ASCII characters, no backslash)")
    return value


def _check_port(port: int, what: str) -> None:
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{what}: port {port} is not in 1..65535")


@dataclass(frozen=True)
class DicomwebSettings:
    """A DICOMweb server (STOW-RS destination or QIDO-RS/WADO-RS source).

    Args:
        url: the DICOMweb root, without credentials (``https://pacs/dicom-web``).
        username: HTTP basic user name (``None``: no authentication).
        password_env: the environment variable holding the password.
        password_file: a file holding the password (first line; readable by its owner only).
        ca_bundle: TLS: verify the server with this CA bundle (default: the system's).
        client_cert: TLS: a client certificate (PEM, key included).
        timeout: seconds to wait for the server.
    """

    url: str
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    timeout: float = 60.0

    def public(self) -> str:
        """The URL as shown in logs and reports (no credentials)."""
        return public_url(self.url)

    def validate(self, what: str) -> None:
        """Check the URL, the credentials' source and the TLS files; reads nothing secret into messages.

        Raises:
            ValueError, FileNotFoundError: the first problem, naming ``what``.
        """
        check_url(self.url, what)
        host = urllib.parse.urlsplit(self.url).hostname or ""
        if self.timeout <= 0:
            raise ValueError(f"{what}: timeout must be > 0, got {self.timeout}")
        for path in (self.ca_bundle, self.client_cert):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{what}: TLS file {path} does not exist")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError(f"{what}: a password source needs a user name")
        if self.username is None:
            return
        if self.url.startswith("http://") and host not in _LOOPBACK:
            raise ValueError(f"{what}: credentials are sent over https only ({self.public()} is http)")
        if bool(self.password_env) == bool(self.password_file):
            raise ValueError(f"{what}: give the password in exactly one of an environment variable or a file")
        self._password(what)

    def _password(self, what: str) -> str:
        if self.password_env:
            value = os.environ.get(self.password_env, "")
            if not value:
                raise ValueError(f"{what}: the environment variable {self.password_env} is not set or empty")
            return value
        assert self.password_file is not None
        path = Path(self.password_file)
        if not path.is_file():
            raise FileNotFoundError(f"{what}: password file {path} does not exist")
        if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"{what}: password file {path} is readable by others (chmod 600 it)")
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"{what}: password file {path} is empty")
        return lines[0].strip()

    def session(self) -> requests.Session:
        """A ``requests`` session with the credentials and TLS settings (for ``dicomweb-client``)."""
        import requests

        session = requests.Session()  # no transport retries: the service's queue retries, with backoff
        if self.username is not None:
            session.auth = (self.username, self._password("DICOMweb"))
        if self.ca_bundle is not None:
            session.verify = str(self.ca_bundle)
        if self.client_cert is not None:
            session.cert = str(self.client_cert)
        return session


@dataclass(frozen=True)
class CStoreSettings:
    """A C-STORE SCP to send the SRs to (a PACS or a router).

    Args:
        host: its address.
        port: its DICOM port.
        ae_title: its AE title (the called AE title).
        calling_ae_title: ours.
        timeout: seconds for the association and each store.
    """

    host: str
    port: int
    ae_title: str
    calling_ae_title: str = "MONAI_IMC"
    timeout: float = 60.0

    def public(self) -> str:
        """How the destination is shown in logs and reports."""
        return f"{self.ae_title}@{self.host}:{self.port}"

    def validate(self, what: str) -> None:
        """Raises ValueError naming ``what`` for a bad host, port or AE title."""
        if not self.host.strip():
            raise ValueError(f"{what}: no host")
        _check_port(self.port, what)
        check_ae_title(self.ae_title, f"{what} AE title")
        check_ae_title(self.calling_ae_title, f"{what} calling AE title")
        if self.timeout <= 0:
            raise ValueError(f"{what}: timeout must be > 0, got {self.timeout}")


@dataclass(frozen=True)
class ListenerSettings:
    """The C-STORE SCP of the service.

    Args:
        allowed_calling: the calling AE titles accepted (at least one; others are rejected).
        ae_title: our AE title.
        host: the address to bind (default loopback; ``0.0.0.0`` to listen on every interface).
        port: the DICOM port.
        quiet_seconds: a study is complete when no instance of it arrived for this long.
        max_instances_per_association: an association sending more is refused the rest (out of resources).
        max_pdu: the largest PDU we accept, bytes.
    """

    allowed_calling: tuple[str, ...]
    ae_title: str = "MONAI_IMC"
    host: str = "127.0.0.1"
    port: int = 11112
    quiet_seconds: float = 10.0
    max_instances_per_association: int = 5000
    max_pdu: int = 262144

    def validate(self) -> None:
        """Raises ValueError for a bad AE title, port, limit, or no allowed calling AE title."""
        check_ae_title(self.ae_title, "listener AE title")
        _check_port(self.port, "listener")
        if not self.allowed_calling:
            raise ValueError("listener: name the calling AE titles to accept (--allow-calling-ae)")
        for title in self.allowed_calling:
            check_ae_title(title, "allowed calling AE title")
        if self.quiet_seconds <= 0:
            raise ValueError(f"listener: quiet time must be > 0 s, got {self.quiet_seconds}")
        if self.max_instances_per_association < 1 or self.max_pdu < 4096:
            raise ValueError("listener: the association limits must be >= 1 instance and >= 4096 bytes")


@dataclass(frozen=True)
class PullSettings:
    """The DICOMweb pull source: QIDO-RS for studies, WADO-RS to retrieve each new one once.

    Args:
        server: the DICOMweb server.
        poll_seconds: seconds between two QIDO-RS searches.
        limit: studies per search.
        filters: QIDO-RS search filters (e.g. ``{"ModalitiesInStudy": "CT"}``).
    """

    server: DicomwebSettings
    poll_seconds: float = 30.0
    limit: int = 100
    filters: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raises ValueError for a bad server, interval or limit."""
        self.server.validate("pull source")
        if self.poll_seconds <= 0 or self.limit < 1:
            raise ValueError("pull source: poll interval must be > 0 s and the limit >= 1")


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``monai-imc serve`` needs.

    Args:
        output: the folder of the queue (``imc_queue.sqlite``), the received studies and the SRs.
        bundle: the MONAI bundle (``None``: the default one).
        device: override the bundle's device.
        listener: the C-STORE SCP (``None``: none).
        pull: the DICOMweb source (``None``: none).
        destination: where the SRs go (``None``: the output folder only).
        max_pending_studies: studies waiting or in work at most; a new study beyond it is refused.
        retry_seconds: the first delay before a failed delivery or processing is retried; doubles each time.
        retry_max_seconds: the longest delay between two tries.
        max_processing_attempts: a study whose processing raised this many times is failed (a delivery is
            retried without limit: nothing is lost).
        exit_when_idle: stop once nothing arrived and nothing is left to do for this long (``None``: never).
    """

    output: Path
    bundle: Path | None = None
    device: str | None = None
    listener: ListenerSettings | None = None
    pull: PullSettings | None = None
    destination: DicomwebSettings | CStoreSettings | None = None
    max_pending_studies: int = 100
    retry_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    max_processing_attempts: int = 3
    exit_when_idle: float | None = None

    def validate(self) -> None:
        """Check every setting before anything loads.

        Raises:
            ValueError, FileNotFoundError: the first problem.
        """
        if self.listener is None and self.pull is None:
            raise ValueError(
                "serve needs a source: a listener (--port) and/or a DICOMweb pull source (--pull)"
            )
        if self.listener is not None:
            self.listener.validate()
        if self.pull is not None:
            self.pull.validate()
        if self.destination is not None:
            self.destination.validate("destination")
        if self.bundle is not None and not Path(self.bundle).exists():
            raise FileNotFoundError(f"bundle {self.bundle} does not exist")
        if Path(self.output).exists() and not Path(self.output).is_dir():
            raise NotADirectoryError(f"output {self.output} is not a folder")
        if self.max_pending_studies < 1 or self.max_processing_attempts < 1:
            raise ValueError("the pending-study limit and the processing attempts must be >= 1")
        if not 0 < self.retry_seconds <= self.retry_max_seconds:
            raise ValueError("retry delays: need 0 < first delay <= longest delay")
        if self.exit_when_idle is not None and self.exit_when_idle <= 0:
            raise ValueError("exit-when-idle must be > 0 s")

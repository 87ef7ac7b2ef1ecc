"""STOW-RS: the app sends its SRs to a real Orthanc (with its DICOMweb plugin) on loopback, and they join
the original study there; a server that is down is a failure of the run, not a crash."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from app_helpers import run_app
from helpers import require_tool

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_stow
from monai_imc.deploy.report import RunReport
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.stow import public_url, stow_files

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[str]:
    """An Orthanc with DICOMweb on a loopback port, in a temporary folder; yields the DICOMweb root."""
    exe = require_tool("Orthanc", "orthanc")
    if not DICOMWEB_PLUGIN.is_file():
        reason = f"{DICOMWEB_PLUGIN} not found (install the Debian package orthanc-dicomweb)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    http = _free_port()
    config = {
        "Name": "imc-test",
        "StorageDirectory": str(tmp_path / "storage"),
        "IndexDirectory": str(tmp_path / "index"),
        "HttpPort": http,
        "DicomPort": _free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (tmp_path / "orthanc.json").write_text(json.dumps(config))
    with open(tmp_path / "orthanc.log", "wb") as log:
        process = subprocess.Popen(
            [exe, str(tmp_path / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/system", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "Orthanc did not start:\n" + (tmp_path / "orthanc.log").read_text(errors="replace")
                )
            time.sleep(0.3)
        yield f"http://127.0.0.1:{http}/dicom-web"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _instances(root: str, study: str) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"{root}/studies/{study}/instances", headers={"Accept": "application/dicom+json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def test_the_app_stores_its_srs_into_the_original_study(
    orthanc: str, imc: IMCContext, sample_study: SampleStudy, tmp_path: Path
) -> None:
    from monai_imc.operators.application import IMCApplication

    folder = tmp_path / "in"
    for name in ("ct", "mr_motion4"):
        series = next(s for s in sample_study.series if s.name == name)
        shutil.copytree(series.path.parent, folder / name)
    stored_sources = stow_files(orthanc, [next(s for s in sample_study.series if s.name == "ct").path])
    assert stored_sources[0].stored  # the PACS holds the original study
    app = IMCApplication(
        ["python", "tests"], imc=imc, input_folder=folder, output_folder=tmp_path / "out", stow_url=orthanc
    )
    app.run()
    report = app.report
    assert report is not None and report.exit_code == 0, report.to_dict()
    assert len(report.of("stored")) == len(report.written) == 2
    sr_uids = {str(pydicom.dcmread(p).SOPInstanceUID) for p in report.written}
    instances = _instances(orthanc, sample_study.study_instance_uid)
    in_pacs = {
        item["00080018"]["Value"][0]: item.get("00080060", {}).get("Value", [""])[0] for item in instances
    }
    assert sr_uids <= set(in_pacs) and {in_pacs[u] for u in sr_uids} == {"SR"}
    saved = json.loads((tmp_path / "out" / "imc_run_report.json").read_text())
    assert saved["stored"] == 2


def test_a_server_that_is_down_fails_the_run(
    imc: IMCContext, sample_study: SampleStudy, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    series = next(s for s in sample_study.series if s.name == "ct")
    shutil.copytree(series.path.parent, folder / "ct")
    written = run_app(imc, folder, tmp_path / "out").report.written
    url = f"http://127.0.0.1:{_free_port()}/dicom-web"
    report = RunReport(str(folder), str(tmp_path / "out"))
    results = stage_stow(written, url, report)
    assert [r.stored for r in results] == [False] and url in results[0].reason
    assert report.exit_code == 1 and report.of("failed")[0].what == "stow"


def test_credentials_never_travel_in_the_url() -> None:
    assert public_url("http://user:secret@pacs:8042/dicom-web") == "http://pacs:8042/dicom-web"
    with pytest.raises(ValueError, match="credentials") as info:
        stow_files("http://user:secret@pacs:8042/dicom-web", [])
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="http"):
        stow_files("ftp://pacs/dicom-web", [])

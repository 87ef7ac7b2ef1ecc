"""STOW-RS: the app sends its SRs to a real Orthanc (with its DICOMweb plugin) on loopback, and they join
the original study there; a server that is down is a failure of the run, not a crash."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from app_helpers import run_app
from orthanc_helpers import Orthanc, free_port

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_stow
from monai_imc.deploy.report import RunReport
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.stow import public_url, stow_files


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[str]:
    """An Orthanc with DICOMweb on a loopback port, in a temporary folder; yields the DICOMweb root."""
    server = Orthanc(tmp_path / "orthanc")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _instances(root: str, study: str) -> list[dict[str, object]]:
    from dicomweb_client import DICOMwebClient

    return DICOMwebClient(root).search_for_instances(study_instance_uid=study)


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
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
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

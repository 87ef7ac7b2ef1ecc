"""Bad input through the real app graph: each bad file or series gets a clear reason (file, problem; never
a patient name or ID), the good series still get SRs, the exit code says that something failed, and no
partial file is left."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from app_helpers import AppRun, run_app
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import REPORT_NAME
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.sr_step import sr_file_name
from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment
from monai_imc.dicom.sr_file import write_imc_sr

PATIENT_MARKERS = ("IMC^Sample", "IMC-SAMPLE-0001")


def _renamed(ds: pydicom.Dataset) -> pydicom.Dataset:
    """The dataset as a new instance of a new series of the same study."""
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def build_bad_study(sample: SampleStudy, folder: Path) -> dict[str, Path]:
    """Two good sample series plus one case of every kind of bad input; returns the bad files by kind."""
    good = {s.name: s for s in sample.series}
    for name in ("ct", "mr"):
        shutil.copytree(good[name].path.parent, folder / name)
    ct_file = good["ct"].path
    bad: dict[str, Path] = {}

    truncated = _renamed(pydicom.dcmread(ct_file))  # its pixel data ends early
    bad["truncated"] = folder / "corrupt" / "truncated.dcm"
    bad["truncated"].parent.mkdir()
    truncated.save_as(bad["truncated"], enforce_file_format=True)
    data = bad["truncated"].read_bytes()
    bad["truncated"].write_bytes(data[: len(data) - 1000])

    bad["header"] = folder / "corrupt" / "header_only.dcm"  # cut inside the file meta: no UIDs at all
    bad["header"].write_bytes(ct_file.read_bytes()[:300])

    no_pixels = _renamed(pydicom.dcmread(ct_file))
    del no_pixels.PixelData
    bad["no_pixels"] = folder / "no_pixels" / "IM0001.dcm"
    bad["no_pixels"].parent.mkdir()
    no_pixels.save_as(bad["no_pixels"], enforce_file_format=True)

    source = pydicom.dcmread(ct_file)
    bad["sr"] = write_imc_sr(
        folder / "sr" / "SR0001.dcm",
        [ImageAssessment(source, None, None, 0.9)],
        [],
        AlgorithmInfo("earlier-run", "sha256:0"),
    )

    ko = hd.ko.KeyObjectSelectionDocument(
        evidence=[source],
        content=hd.ko.KeyObjectSelection(document_title=codes.DCM.OfInterest, referenced_objects=[source]),
        series_instance_uid=hd.UID(),
        series_number=98,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
    )
    bad["ko"] = folder / "ko" / "KO0001.dcm"
    bad["ko"].parent.mkdir()
    ko.save_as(bad["ko"], enforce_file_format=True)

    bad["text"] = folder / "notes.txt"
    bad["text"].write_text("not an image\n")
    return bad


@pytest.fixture(scope="module")
def bad_run(
    imc: IMCContext,
    sample_study: SampleStudy,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[AppRun, dict[str, Path], list[logging.LogRecord]]:
    folder = tmp_path_factory.mktemp("bad_input")
    bad = build_bad_study(sample_study, folder)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        run = run_app(imc, folder, tmp_path_factory.mktemp("bad_out"))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return run, bad, records


def _outcome(run: AppRun, path: Path) -> tuple[str, str]:
    for o in run.report.outcomes:
        if o.name == str(path):
            return o.status, o.reason
    raise AssertionError(f"no outcome for {path}: {run.report.to_dict()}")


def _series_outcome(run: AppRun, path: Path) -> tuple[str, str]:
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)
    return _outcome(run, uid)  # type: ignore[arg-type]


def test_good_series_still_get_valid_srs(
    bad_run: tuple[AppRun, dict[str, Path], list[logging.LogRecord]], sample_study: SampleStudy
) -> None:
    run, _, _ = bad_run
    good = {s.series_instance_uid for s in sample_study.series if s.name in ("ct", "mr")}
    written = {o.name for o in run.report.of("written")}
    assert written == good
    assert sorted(p.name for p in run.output.iterdir()) == sorted(
        [*(sr_file_name(u) for u in good), REPORT_NAME]
    )
    for path in run.report.written:
        assert pydicom.dcmread(path).Modality == "SR"


def test_exit_code_and_report_say_what_failed(
    bad_run: tuple[AppRun, dict[str, Path], list[logging.LogRecord]],
) -> None:
    run, bad, _ = bad_run
    assert run.report.exit_code == 1
    status, reason = _series_outcome(run, bad["no_pixels"])
    assert status == "failed" and "no pixel data" in reason and str(bad["no_pixels"]) in reason
    status, reason = _outcome(run, bad["truncated"])
    assert status == "failed" and "truncated" in reason  # it joins no series: its only instance is unreadable
    status, reason = _outcome(run, bad["header"])
    assert status == "failed" and reason
    for kind, what in (("sr", "Comprehensive 3D SR"), ("ko", "Key Object Selection")):
        status, reason = _series_outcome(run, bad[kind])
        assert status == "skipped" and "not an image object" in reason and what in reason, reason
    status, reason = _outcome(run, bad["text"])
    assert status == "skipped" and "not a DICOM file" in reason
    saved = json.loads((run.output / REPORT_NAME).read_text())
    # one outcome per bad input (issue 19): the series without pixels, the truncated file, the cut header
    assert saved["exit_code"] == 1 and saved["failed"] == len(run.report.of("failed")) == 3


def test_logs_name_the_files_never_the_patient(
    bad_run: tuple[AppRun, dict[str, Path], list[logging.LogRecord]],
) -> None:
    run, bad, records = bad_run
    messages = [r.getMessage() for r in records]
    for kind in ("truncated", "header", "no_pixels", "text"):
        assert any(str(bad[kind]) in m for m in messages), kind
    everything = "\n".join(messages) + (run.output / REPORT_NAME).read_text()
    for marker in PATIENT_MARKERS:
        assert marker not in everything


def test_empty_folder_fails_cleanly(imc: IMCContext, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    run = run_app(imc, tmp_path / "in", tmp_path / "out")
    assert run.report.exit_code == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == [REPORT_NAME]
    (failure,) = run.report.of("failed")
    assert failure.what == "input" and "no image series" in failure.reason

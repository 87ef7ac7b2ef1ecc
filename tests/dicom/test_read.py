"""Reading a folder of real DICOM files: grouping by study/series, non-DICOM skipped, bad files reported."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pydicom
import pytest
from helpers import dicom_path

from monai_imc.dicom.read import read_dicom_folder


def test_folder_grouped_with_errors_and_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(dicom_path("CT_small.dcm"), tmp_path / "ct.dcm")
    (tmp_path / "sub").mkdir()
    shutil.copy(dicom_path("MR_small.dcm"), tmp_path / "sub" / "mr.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM\n", encoding="utf-8")
    raw = dicom_path("CT_small.dcm").read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(raw[:1000])  # preamble and DICM, then cut mid-header
    (tmp_path / "cut_pixels.dcm").write_bytes(raw[:-5000])  # cut inside the pixel data
    shutil.copy(dicom_path("MR_truncated.dcm"), tmp_path / "mr_truncated.dcm")  # pydicom's own
    no_series = pydicom.dcmread(dicom_path("CT_small.dcm"))
    del no_series.SeriesInstanceUID
    no_series.save_as(tmp_path / "no_series.dcm")

    with caplog.at_level(logging.DEBUG, logger="monai_imc"):
        folder = read_dicom_folder(tmp_path)

    ct, mr = pydicom.dcmread(dicom_path("CT_small.dcm")), pydicom.dcmread(dicom_path("MR_small.dcm"))
    assert set(folder.studies) == {ct.StudyInstanceUID, mr.StudyInstanceUID}
    assert [ds.SOPInstanceUID for ds in folder.studies[ct.StudyInstanceUID][ct.SeriesInstanceUID]] == [
        ct.SOPInstanceUID
    ]
    assert len(folder.series()) == 2
    assert folder.skipped == [tmp_path / "notes.txt"]
    errors = dict(folder.errors)
    cut = {tmp_path / name for name in ("truncated.dcm", "cut_pixels.dcm", "mr_truncated.dcm")}
    assert set(errors) == cut | {tmp_path / "no_series.dcm"}
    for path in cut:
        assert "truncated" in errors[path], errors[path]
    assert errors[tmp_path / "no_series.dcm"] == "missing SeriesInstanceUID"
    # logs name files and UIDs, never the patient
    for ds in (ct, mr):
        for secret in (str(ds.PatientName), str(ds.PatientID)):
            assert secret not in caplog.text


def test_not_a_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        read_dicom_folder(tmp_path / "absent")

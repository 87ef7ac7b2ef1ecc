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
    skipped = dict(folder.skipped_files)
    # a truncated copy beside a complete copy of the same instance: the complete one is used, whatever the order
    copies = {
        tmp_path / "cut_pixels.dcm": tmp_path / "ct.dcm",
        tmp_path / "mr_truncated.dcm": tmp_path / "sub" / "mr.dcm",
    }
    assert set(skipped) == {tmp_path / "notes.txt", *copies}
    for path, complete in copies.items():
        assert (
            "truncated" in skipped[path] and f"a complete copy of its instance ({complete})" in skipped[path]
        )
    errors = dict(folder.errors)
    assert set(errors) == {tmp_path / "truncated.dcm", tmp_path / "no_series.dcm"}
    assert "truncated" in errors[tmp_path / "truncated.dcm"]
    assert errors[tmp_path / "no_series.dcm"] == "missing SeriesInstanceUID"
    # logs name files and UIDs, never the patient
    for ds in (ct, mr):
        for secret in (str(ds.PatientName), str(ds.PatientID)):
            assert secret not in caplog.text


def test_not_a_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        read_dicom_folder(tmp_path / "absent")


def test_duplicates_keep_the_complete_copy_whatever_the_order(tmp_path: Path) -> None:
    raw = dicom_path("CT_small.dcm").read_bytes()
    for names in (("a_cut.dcm", "b_full.dcm"), ("a_full.dcm", "b_cut.dcm")):
        folder = tmp_path / names[0]
        folder.mkdir()
        cut, full = (folder / n for n in (names if "cut" in names[0] else names[::-1]))
        cut.write_bytes(raw[:-3000])
        full.write_bytes(raw)
        (folder / "c_same.dcm").write_bytes(raw)  # a second complete copy
        result = read_dicom_folder(folder)
        ((_, _, datasets),) = result.series()
        assert [Path(ds.filename).name for ds in datasets] == [full.name]
        assert not result.errors
        reasons = dict(result.skipped_files)
        assert set(reasons) == {cut, folder / "c_same.dcm"}
        assert (
            f"a second copy of SOP Instance UID {datasets[0].SOPInstanceUID}"
            in reasons[folder / "c_same.dcm"]
        )


def test_empty_file_is_reported_as_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    folder = read_dicom_folder(tmp_path)
    assert folder.errors == [(tmp_path / "empty.dcm", "empty file (0 bytes)")]

"""Text values against their VR (PS3.5 6.2): what is truncated, what is emptied, what is kept."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest
from helpers import dicom_path, require_tool

from monai_imc.dicom import vr
from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment, TextRecord
from monai_imc.dicom.sr_file import write_imc_sr


@pytest.mark.parametrize(
    ("kind", "value", "identifier", "expected"),
    [
        ("LO", "S" * 70, False, "S" * 61 + "..."),
        ("SH", "Head and neck CTA", False, "Head and neck..."),
        ("LO", "Rule out\x07 bleed", False, "Rule out  bleed"),
        ("ST", "line one\r\nline two", False, "line one\r\nline two"),
        ("LT", "a\tb", False, "a b"),
        ("LO", "ID" * 40, True, ""),
        ("DA", "2020-01-31", False, ""),
        ("DA", "20200131", False, "20200131"),
        ("TM", "25:99", False, ""),
        ("CS", "male", False, ""),
        ("IS", "99999999999", False, ""),
        ("DS", "1.5e3", False, "1.5e3"),
        ("PN", "A" * 80 + "^B", False, "A" * 61 + "..."),
    ],
)
def test_conform_value(kind: str, value: str, identifier: bool, expected: str) -> None:
    got, reason = vr.conform_value(kind, value, identifier)
    assert got == expected
    assert (reason is None) == (got == value)
    if reason is None:
        assert vr.problems(_one(kind, got)) == []


def _one(kind: str, value: str) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.add_new(0x00091010, kind, value)
    return ds


def test_conform_source_keeps_the_originals_and_the_uids() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
        ds.StudyDescription = "S" * 70
        ds.StudyDate = "2020-01-31"
        ds.AccessionNumber = "A" * 30
        ds.PatientSex = "X"
        item = pydicom.Dataset()
        item.RequestedProcedureDescription = "R" * 80
        ds.RequestAttributesSequence = [item]
    assert vr.problems(ds)
    header, changes = vr.conform_source(ds)
    assert vr.problems(header) == []
    assert "PixelData" not in header and header.SOPInstanceUID == ds.SOPInstanceUID
    originals = {c.keyword: c.original for c in changes}
    assert originals == {
        "StudyDescription": "S" * 70,
        "StudyDate": "2020-01-31",
        "AccessionNumber": "A" * 30,
        "PatientSex": "X",
        "RequestAttributesSequence>RequestedProcedureDescription": "R" * 80,
    }
    assert header.StudyDescription == "S" * 61 + "..." and header.AccessionNumber == ""
    assert ds.StudyDescription == "S" * 70  # the source is left as it was


def test_attributes_stored_under_another_vr_get_the_standards() -> None:
    """Explicit-VR files can store a standard attribute under any VR (found by tests/dicom/test_fuzz.py:
    a PatientID as DS made an SR dciodvfy refused, a PatientName as US one highdicom refused)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.add_new(0x00100020, "DS", "12")  # PatientID (LO)
    ds.add_new(0x00100010, "US", 7)  # PatientName (PN)
    ds.add_new(0x00081030, "OB", b"Head CT\0")  # StudyDescription (LO)
    ds.add_new(0x00080020, "FL", 1.5)  # StudyDate (DA)
    assert {p.split(" ")[0] for p in vr.problems(ds)} == {
        "PatientID",
        "PatientName",
        "StudyDescription",
        "StudyDate",
    }
    header, changes = vr.conform_source(ds)
    assert vr.problems(header) == []
    got = {
        e.keyword: (e.VR, e.value) for e in header if e.keyword in ("PatientID", "PatientName", "StudyDate")
    }
    assert got == {"PatientID": ("LO", "12"), "PatientName": ("PN", "7"), "StudyDate": ("DA", "")}
    assert (header["StudyDescription"].VR, header.StudyDescription) == ("LO", "Head CT")
    assert {c.keyword: c.original for c in changes} == {
        "PatientID": "12",
        "PatientName": "7",
        "StudyDescription": "Head CT",
        "StudyDate": "1.5",
    }
    assert all("stored as" in c.reason for c in changes)


def test_tabs_and_blank_texts_make_a_valid_sr(tmp_path: Path) -> None:
    """TAB is no character of UT (dciodvfy refuses it) and a blank text cannot fill a TEXT item (found by
    tests/dicom/test_fuzz.py): the TAB becomes a space, the blank text is left out."""
    dciodvfy = require_tool("dciodvfy", "dicom3tools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    texts = [TextRecord("question", "Is there\ta mass?"), TextRecord("blank", " \t ")]
    path = write_imc_sr(
        tmp_path / "sr.dcm", [ImageAssessment(ds, None, None, 0.5)], texts, AlgorithmInfo("t", "x")
    )
    run = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
    assert not [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    values = [str(e.value) for e in pydicom.dcmread(path).iterall() if e.keyword == "TextValue"]
    assert "Is there a mass?" in values and "blank" in values and not any("\t" in v for v in values)

"""The sample study: real pydicom DICOM in one anonymous study, fresh UIDs, noisy variants and texts."""

from __future__ import annotations

import json

import numpy as np
import pydicom
from helpers import dicom_path

from monai_imc.deploy.sample import SampleStudy, write_sample_study


def test_one_study_with_fresh_uids_and_no_patient(sample_study: SampleStudy) -> None:
    series_uids, sop_uids = set(), set()
    for series in sample_study.series:
        ds = pydicom.dcmread(series.path)
        original = pydicom.dcmread(dicom_path(series.source), stop_before_pixels=True)
        assert ds.StudyInstanceUID == sample_study.study_instance_uid
        assert ds.SeriesInstanceUID == series.series_instance_uid != original.SeriesInstanceUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID != original.SOPInstanceUID
        assert (str(ds.PatientName), ds.PatientID) == ("IMC^Sample", "IMC-SAMPLE-0001")
        assert "InstitutionName" not in ds and not any(e.tag.is_private for e in ds)
        assert ds.RequestAttributesSequence[0].ReasonForTheRequestedProcedure
        assert ds.pixel_array.size > 0
        series_uids.add(ds.SeriesInstanceUID)
        sop_uids.add(ds.SOPInstanceUID)
    assert len(series_uids) == len(sop_uids) == len(sample_study.series)
    assert {s.modality for s in sample_study.series} >= {"CT", "MR", "CR", "US"}


def test_noisy_series_differ_from_their_source_in_pixels_only(sample_study: SampleStudy) -> None:
    noisy = [s for s in sample_study.series if s.noise]
    assert {(s.noise, s.severity) for s in noisy} == {("motion", 4), ("rician", 3), ("low_dose", 4), ("spike", 4)}
    for series in noisy:
        ds = pydicom.dcmread(series.path)
        original = pydicom.dcmread(dicom_path(series.source))
        assert (
            ds.pixel_array.shape == original.pixel_array.shape
            and ds.pixel_array.dtype == original.pixel_array.dtype
        )
        assert not np.array_equal(ds.pixel_array, original.pixel_array)
        assert series.noise in ds.DerivationDescription and ds.ImageType[0] == "DERIVED"


def test_texts_are_noisy_and_the_sidecar_names_the_study(sample_study: SampleStudy) -> None:
    sidecar = json.loads(sample_study.sidecar.read_text())
    assert sidecar["study_instance_uid"] == sample_study.study_instance_uid
    noisy_questions = [v for k, v in sample_study.texts.items() if k.startswith("sidecar question")]
    assert sidecar["questions"] == [noisy for _, noisy in noisy_questions]
    assert all(clean != noisy for clean, noisy in noisy_questions)


def test_the_same_seed_gives_the_same_study(sample_study: SampleStudy, tmp_path) -> None:
    again = write_sample_study(tmp_path, seed=0)
    assert again.study_instance_uid == sample_study.study_instance_uid
    for a, b in zip(again.series, sample_study.series):
        assert a.series_instance_uid == b.series_instance_uid
        assert np.array_equal(pydicom.dcmread(a.path).pixel_array, pydicom.dcmread(b.path).pixel_array)

"""A sample study for the app, made from pydicom's bundled DICOM files: no download, no patient.

Real CT, MR (single slice and a 10-frame enhanced MR), CR chest and US images from ``pydicom.data``, put into
one study (one StudyInstanceUID, fresh Series / SOP Instance / Frame of Reference UIDs, an anonymous
patient), plus noisy series made with :mod:`monai_imc.noise` (MR motion severity 4, MR Rician noise severity
3, CT low dose severity 4, MR k-space spike severity 4) and noisy clinical texts (text noise of the same library) in the Request
Attributes Sequence and in a JSON sidecar. UIDs derive from the seed, so one seed gives the same study.

Usage::

    from monai_imc.deploy.sample import write_sample_study

    study = write_sample_study("sample_study/")
    study.study_instance_uid, [s.name for s in study.series]
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from monai_imc.atomic import atomic_output
from monai_imc.noise import get_noise

__all__ = ["SAMPLE_SERIES", "SampleSeries", "SampleStudy", "write_sample_study"]

logger = logging.getLogger(__name__)

SAMPLE_SERIES: tuple[tuple[str, str, str | None, int | None], ...] = (
    ("ct", "693_UNCR.dcm", None, None),
    ("mr", "MR-SIEMENS-DICOM-WithOverlays.dcm", None, None),
    ("mr_multiframe", "emri_small.dcm", None, None),
    ("cr_chest", "RG1_UNCI.dcm", None, None),
    ("us", "US1_UNCR.dcm", None, None),
    ("mr_motion4", "MR-SIEMENS-DICOM-WithOverlays.dcm", "motion", 4),
    ("mr_rician3", "MR-SIEMENS-DICOM-WithOverlays.dcm", "rician", 3),
    ("ct_low_dose4", "693_UNCR.dcm", "low_dose", 4),
    ("mr_spike4", "MR-SIEMENS-DICOM-WithOverlays.dcm", "spike", 4),
)
"""``(name, pydicom test file, image noise or None, severity)`` of each series of the sample study.

The CT (512 x 512) and MR (484 x 484) are full-resolution clinical images, as a PACS sends them;
pydicom's thumbnails (``CT_small``: 128 px, ``MR_small``: 64 px) are below the resolution the reference
model and its prototype bank were built at, so the perceiver would call them not assessable. The
multi-frame MR stays a 64 px thumbnail on purpose: the SR says why it is not assessed."""

CLEAN_TEXTS = {
    "ReasonForTheRequestedProcedure": ("Rule out pneumothorax in the left lung.", "typo", 3),
    "RequestedProcedureDescription": ("Chest and brain imaging", None, None),
}
"""DICOM text fields of the sample study: ``keyword: (clean text, text noise or None, severity)``."""

SIDECAR_QUESTIONS = (
    ("Is there a pneumothorax in the left lung?", "typo", 3),
    ("Where is the abnormality located?", "ocr", 2),
)
"""Sidecar questions: ``(clean question, text noise, severity)``."""

SIDECAR_TEXTS = {"draft_report": ("No acute abnormality is seen in the left lung.", "asr", 2)}
"""Sidecar texts kept (not asked): ``name: (clean text, text noise, severity)``."""

_IDENTIFYING = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientTelephoneNumbers",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "PerformingPhysicianName",
    "OperatorsName",
    "RequestingPhysician",
    "NameOfPhysiciansReadingStudy",
    "StationName",
    "DeviceSerialNumber",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "IssuerOfPatientID",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
)


@dataclass(frozen=True)
class SampleSeries:
    """One series of the sample study.

    Attributes:
        name: its short name (``"mr_motion4"``).
        source: the pydicom test file it was made from.
        modality: its Modality.
        noise: the image noise applied (``None``: as in pydicom's file).
        severity: the noise's severity.
        series_instance_uid: its new SeriesInstanceUID.
        path: the file written.
    """

    name: str
    source: str
    modality: str
    noise: str | None
    severity: int | None
    series_instance_uid: str
    path: Path


@dataclass(frozen=True)
class SampleStudy:
    """The sample study written by :func:`write_sample_study`.

    Attributes:
        folder: where it is.
        study_instance_uid: its StudyInstanceUID.
        series: its series.
        sidecar: the JSON sidecar of questions and texts.
        texts: the clean texts and their noisy versions, ``{role: (clean, noisy)}``.
    """

    folder: Path
    study_instance_uid: str
    series: tuple[SampleSeries, ...]
    sidecar: Path
    texts: dict[str, tuple[str, str]]


def _noisy_text(text: str, noise: str | None, severity: int | None, seed: int) -> str:
    if noise is None or severity is None:
        return text
    return str(get_noise(noise).apply(text, severity=severity, seed=seed))


def _source(name: str) -> Dataset:
    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not in pydicom's test data: install pydicom-data")
    return pydicom.dcmread(path)


def _add_noise(ds: Dataset, noise: str, severity: int, seed: int) -> None:
    """Corrupt the stored pixel values of ``ds`` in place (same dtype and range)."""
    arr = np.asarray(ds.pixel_array)
    channel_first = arr[None] if arr.ndim == 2 else arr  # (1, H, W) or (frames, H, W)
    noisy = np.asarray(get_noise(noise).apply(channel_first, severity=severity, seed=seed)).astype(arr.dtype)
    ds.PixelData = noisy.reshape(arr.shape).tobytes()
    if "ImageType" in ds:
        values = list(ds.ImageType)
        values[0] = "DERIVED"
        ds.ImageType = values
    ds.DerivationDescription = f"monai-imc sample: simulated {noise} artifact, severity {severity}"


def write_sample_study(folder: str | os.PathLike[str], seed: int = 0) -> SampleStudy:
    """Write the sample study into ``folder`` (one sub-folder per series, and ``imc_questions.json``).

    Args:
        folder: the output folder (created).
        seed: seeds the UIDs and the noise.

    Returns:
        What was written.

    Raises:
        FileNotFoundError: a pydicom test file is missing (install pydicom-data).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    entropy = ["monai-imc sample study", str(seed)]
    study_uid = generate_uid(entropy_srcs=[*entropy, "study"])
    texts = {k: (clean, _noisy_text(clean, n, s, seed)) for k, (clean, n, s) in CLEAN_TEXTS.items()}
    written = []
    for index, (name, source, noise, severity) in enumerate(SAMPLE_SERIES):
        ds = _source(source)
        series_uid = generate_uid(entropy_srcs=[*entropy, name, "series"])
        sop_uid = generate_uid(entropy_srcs=[*entropy, name, "instance"])
        ds.remove_private_tags()
        for keyword in _IDENTIFYING:
            if keyword in ds:
                del ds[keyword]
        ds.PatientName = "IMC^Sample"
        ds.PatientID = "IMC-SAMPLE-0001"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study_uid
        ds.StudyID = "IMC1"
        ds.AccessionNumber = "IMC0001"
        ds.StudyDate, ds.StudyTime = "20240101", "090000"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "IMC sample study"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = index + 1
        label = f", simulated {noise} severity {severity}" if noise else ""
        ds.SeriesDescription = f"{ds.Modality} from pydicom {source}{label}"[:64]
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = 1
        if "FrameOfReferenceUID" in ds:
            ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[*entropy, name, "frame of reference"])
        request = Dataset()
        request.RequestedProcedureID = "IMC0001"
        request.ScheduledProcedureStepID = "IMC0001"
        for keyword, (_, noisy) in texts.items():
            setattr(request, keyword, noisy)
        ds.RequestAttributesSequence = [request]
        if noise is not None and severity is not None:
            _add_noise(ds, noise, severity, seed + index)
        path = root / name / "IM0001.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(SampleSeries(name, source, str(ds.Modality), noise, severity, series_uid, path))
    questions = [(_noisy_text(q, n, s, seed + i), q) for i, (q, n, s) in enumerate(SIDECAR_QUESTIONS)]
    extra = {k: (clean, _noisy_text(clean, n, s, seed)) for k, (clean, n, s) in SIDECAR_TEXTS.items()}
    sidecar = root / "imc_questions.json"
    content = {
        "study_instance_uid": study_uid,
        "questions": [noisy for noisy, _ in questions],
        "texts": {k: noisy for k, (_, noisy) in extra.items()},
    }
    with atomic_output(sidecar) as tmp:
        tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for i, (noisy, clean) in enumerate(questions):
        texts[f"sidecar question {i + 1}"] = (clean, noisy)
    texts.update({f"sidecar:{k}": v for k, v in extra.items()})
    logger.info("wrote the sample study (%d series) to %s", len(written), root)
    return SampleStudy(root, study_uid, tuple(written), sidecar, texts)

"""The IMC SR as a DICOM Part 10 file: encoded in memory (the SR of :func:`~monai_imc.dicom.sr.build_imc_sr`,
its values checked against their VRs, read back) and saved atomically (temporary file beside the target, then
rename), so nothing is written half.

The app encodes in a worker process beside the model (:func:`monai_imc.deploy.sr_step.draft_sr`) and saves in
its own process; :func:`write_imc_sr` does both in turn::

    from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment
    from monai_imc.dicom.sr_file import write_imc_sr

    path = write_imc_sr(
        "out/imc_sr.dcm", [ImageAssessment(ds, "motion", 3, 0.91)], [], AlgorithmInfo("m", "sha256:...")
    )
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from monai_imc.atomic import atomic_output
from monai_imc.dicom import vr
from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment, TextRecord, build_imc_sr

__all__ = ["EncodedSR", "encode_imc_sr", "save_encoded_sr", "warm_up_sr_writer", "write_imc_sr"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedSR:
    """An IMC SR encoded as a DICOM Part 10 file in memory, checked and read back, ready to be saved.

    Attributes:
        data: the file's bytes.
        sop_instance_uid: its SOPInstanceUID.
        groups: how many measurement groups (assessed images) it holds.
    """

    data: bytes
    sop_instance_uid: str
    groups: int


def encode_imc_sr(
    assessments: Sequence[ImageAssessment],
    texts: Sequence[TextRecord],
    algorithm: AlgorithmInfo,
    **options: Any,
) -> EncodedSR:
    """Build the IMC SR (:func:`~monai_imc.dicom.sr.build_imc_sr`; ``options`` are its keyword options:
    ``series_number``, ``instance_number``, ``series_description``, ``institution_name``), check its values
    against their VRs and encode it as a Part 10 file in memory, read back once. A module-level function of
    picklable arguments, so that it can run in a worker process.

    Raises:
        ValueError: see :func:`~monai_imc.dicom.sr.build_imc_sr`, or a value that would break the DICOM
            standard.
    """
    sr = build_imc_sr(assessments, texts, algorithm, **options)
    vr.clean_text_values(sr)
    found = vr.problems(sr)
    if found:
        raise ValueError(f"the SR would break the DICOM standard: {'; '.join(found[:5])}")
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)  # reads back before anything is written
    return EncodedSR(data, str(sr.SOPInstanceUID), len(assessments))


def save_encoded_sr(path: str | os.PathLike[str], encoded: EncodedSR) -> Path:
    """Write an encoded SR atomically (temporary file beside ``path``, then rename); returns ``path``."""
    target = Path(path)
    with atomic_output(target) as tmp:
        tmp.write_bytes(encoded.data)
    logger.info(
        "wrote IMC SR (SOP Instance UID %s, %d groups, %d bytes) to %s",
        encoded.sop_instance_uid,
        encoded.groups,
        len(encoded.data),
        target,
    )
    return target


def write_imc_sr(
    path: str | os.PathLike[str],
    assessments: Sequence[ImageAssessment],
    texts: Sequence[TextRecord],
    algorithm: AlgorithmInfo,
    **options: Any,
) -> Path:
    """Build the IMC SR and write it atomically: :func:`encode_imc_sr`, then :func:`save_encoded_sr`.

    Args:
        path: the output file.
        assessments: one per assessed image, all of one study.
        texts: the clinical text records.
        algorithm: model id, bank hash and version.
        options: :func:`~monai_imc.dicom.sr.build_imc_sr`'s keyword options (``series_number``,
            ``instance_number``, ``series_description``, ``institution_name``).

    Returns:
        The path written.

    Raises:
        ValueError: see :func:`encode_imc_sr`; nothing is written then.
    """
    return save_encoded_sr(path, encode_imc_sr(assessments, texts, algorithm, **options))


def warm_up_sr_writer() -> None:
    """Encode two SRs of a synthetic image in memory (nothing is written), so that highdicom's tables of the
    standard and its lazily built caches are loaded before the first real SR: about a second once per
    process, which :func:`monai_imc.deploy.context.load_context` spends in the SR worker process while the
    model loads instead of in the first study's SR stage."""
    for _ in range(2):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (generate_uid() for _ in range(3))
        ds.Modality, ds.PatientID, ds.PatientName, ds.StudyID = "CT", "0", "warm^up", "1"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "000000", ""
        ds.ReferringPhysicianName, ds.PatientBirthDate, ds.PatientSex = "", "", ""
        record = TextRecord("question", "What is shown?", "What is shown?", "What is shown?", "ct")
        encode_imc_sr([ImageAssessment(ds, "motion", 3, 0.8)], [record], AlgorithmInfo("warm-up", "sha256:0"))

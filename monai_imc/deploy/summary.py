"""Read a written IMC SR back into a short summary: per assessed image, the artifact found, the severity,
the probability, whether calibration was applied, and the texts (original, refined, question, answer).

It reads the file, not the app's memory, so what it prints is what a PACS receives.

Usage::

    from monai_imc.deploy.summary import summarize_sr

    summary = summarize_sr("out/IMC_SR_1.2.3.dcm")
    for group in summary.groups:
        group.artifact, group.calibration_applied, group.texts
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from monai_imc.dicom import codes

__all__ = ["GroupSummary", "SRSummary", "TextSummary", "summarize_sr"]

_MEASUREMENT_GROUP = "125007"


@dataclass
class TextSummary:
    """One text record of a group: role, original, refined, question, answer (``None`` when absent)."""

    role: str
    original: str | None = None
    refined: str | None = None
    question: str | None = None
    answer: str | None = None

    @property
    def refined_changed(self) -> bool:
        """Whether the refined text differs from the original."""
        return self.refined is not None and self.original is not None and self.refined != self.original


@dataclass
class GroupSummary:
    """One TID 1501 measurement group (one assessed image).

    Attributes:
        sop_instance_uid: the referenced source image.
        frame_numbers: its referenced frames.
        artifact: the artifact finding's code meaning (``"None"`` for a clean image).
        severity: the coded severity's meaning (Mild / Moderate / Severe), if any.
        level: the IMC severity level 1..5, if any.
        probability: the probability of the finding.
        calibration_applied: whether PDC was applied.
        texts: the text records.
    """

    sop_instance_uid: str | None = None
    frame_numbers: list[int] = field(default_factory=list)
    artifact: str | None = None
    severity: str | None = None
    level: int | None = None
    probability: float | None = None
    calibration_applied: bool | None = None
    texts: list[TextSummary] = field(default_factory=list)


@dataclass
class SRSummary:
    """What one IMC SR says.

    Attributes:
        path: the file.
        study_instance_uid: the study it joins.
        series_description: the SR series' description.
        verification_flag: ``UNVERIFIED`` for the app's SRs.
        algorithm: the algorithm name recorded (TID 4019), if any.
        groups: one per assessed image.
    """

    path: Path
    study_instance_uid: str
    series_description: str
    verification_flag: str
    algorithm: str | None
    groups: list[GroupSummary]


def _concept(item: Dataset) -> str:
    seq = item.get("ConceptNameCodeSequence")
    return str(seq[0].CodeValue) if seq else ""


def _code_meaning(item: Dataset) -> str | None:
    seq = item.get("ConceptCodeSequence")
    return str(seq[0].CodeMeaning) if seq else None


def _number(item: Dataset) -> float | None:
    seq = item.get("MeasuredValueSequence")
    return float(seq[0].NumericValue) if seq else None


def _groups(items: Any) -> list[Dataset]:
    found: list[Dataset] = []
    for item in items or []:
        if item.get("ValueType") == "CONTAINER" and _concept(item) == _MEASUREMENT_GROUP:
            found.append(item)
        else:
            found.extend(_groups(item.get("ContentSequence")))
    return found


def _algorithm(items: Any) -> str | None:
    for item in items or []:
        if item.get("ValueType") == "TEXT" and _concept(item) == "111001":  # Algorithm Name
            return str(item.TextValue)
        found = _algorithm(item.get("ContentSequence"))
        if found:
            return found
    return None


def _group_summary(group: Dataset) -> GroupSummary:
    out = GroupSummary()
    text_fields = {
        codes.ORIGINAL_TEXT.value: "original",
        codes.REFINED_TEXT.value: "refined",
        codes.QUESTION.value: "question",
        codes.ANSWER.value: "answer",
    }
    for item in group.get("ContentSequence", []):
        concept, kind = _concept(item), item.get("ValueType")
        if kind == "IMAGE" and item.get("ReferencedSOPSequence"):
            ref = item.ReferencedSOPSequence[0]
            out.sop_instance_uid = str(ref.ReferencedSOPInstanceUID)
            frames = ref.get("ReferencedFrameNumber")
            if frames is not None:
                out.frame_numbers = [int(f) for f in (frames if isinstance(frames, MultiValue) else [frames])]
        elif concept == codes.IMAGE_ARTIFACTS.value:
            out.artifact = _code_meaning(item)
        elif concept == codes.SEVERITY.value:
            out.severity = _code_meaning(item)
        elif concept == codes.SEVERITY_LEVEL.value:
            level = _number(item)
            out.level = None if level is None else int(level)
        elif concept == codes.PROBABILITY.value:
            out.probability = _number(item)
        elif concept == codes.CALIBRATION_APPLIED.value:
            out.calibration_applied = _code_meaning(item) == codes.YES.meaning
        elif kind == "TEXT" and concept == codes.TEXT_ROLE.value:
            out.texts.append(TextSummary(str(item.TextValue)))
        elif kind == "TEXT" and concept in text_fields and out.texts:
            setattr(out.texts[-1], text_fields[concept], str(item.TextValue))
    return out


def summarize_sr(path: str | os.PathLike[str]) -> SRSummary:
    """Summarise an IMC SR file.

    Raises:
        ValueError: the file is not an SR with a content tree.
    """
    file = Path(path)
    ds = pydicom.dcmread(file)
    if ds.get("Modality") != "SR" or "ContentSequence" not in ds:
        raise ValueError(f"{file}: not a structured report with content (Modality {ds.get('Modality')})")
    return SRSummary(
        path=file,
        study_instance_uid=str(ds.StudyInstanceUID),
        series_description=str(ds.get("SeriesDescription", "")),
        verification_flag=str(ds.get("VerificationFlag", "")),
        algorithm=_algorithm(ds.ContentSequence),
        groups=[_group_summary(g) for g in _groups(ds.ContentSequence)],
    )

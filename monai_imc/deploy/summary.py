"""Read a written IMC SR back into a short summary: per assessed image, the verdict (clean, artifact with
severity and probability, or not assessable with its reason), whether calibration was applied, and the
text records (original, refined, its edits, question, answer: each question with its own answer).

It reads the file with the API that wrote it (``highdicom.sr.srread`` and the TID 1500 / 1501 typed
getters), not the app's memory, so what it prints is what a PACS receives. :func:`source_series` names
the series an SR reports on (number, description, modality, folder) from the input's own headers.

Usage::

    from monai_imc.deploy.summary import summarize_sr

    summary = summarize_sr("out/IMC_SR_1.2.3.dcm")
    for group in summary.groups:
        group.verdict, group.summary, group.calibration_applied, group.texts
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from monai_imc.dicom import codes
from monai_imc.dicom.sr_text import EMPTY_ANSWER

__all__ = ["GroupSummary", "SRSummary", "SeriesInfo", "TextSummary", "source_series", "summarize_sr"]


@dataclass
class TextSummary:
    """One text record of a group: role, original, refined, question, answer (``None`` when absent), and
    the edits refinement made (in words, as the SR gives them)."""

    role: str
    original: str | None = None
    refined: str | None = None
    question: str | None = None
    answer: str | None = None
    edits: list[str] = field(default_factory=list)

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
        verdict: ``"clean"``, ``"artifact"`` or ``"not assessable"``.
        artifact: the artifact finding's code meaning (``"None"`` for a clean image, ``"Not assessable"``).
        severity: the coded severity's meaning (Mild / Moderate / Severe), if any.
        level: the IMC severity level 1..5, if any.
        probability: the probability of the finding (``None`` when not assessable).
        calibration_applied: whether PDC was applied.
        calibration_note: why PDC left a found artifact uncalibrated, if so.
        restoration: what perceiver-guided restoration did (``none: <why>`` when nothing), where it ran.
        summary: the verdict in plain words, as written.
        reason: why the image was not assessable, if so.
        texts: the text records.
    """

    sop_instance_uid: str | None = None
    frame_numbers: list[int] = field(default_factory=list)
    verdict: str = "clean"
    artifact: str | None = None
    severity: str | None = None
    level: int | None = None
    probability: float | None = None
    calibration_applied: bool | None = None
    calibration_note: str | None = None
    restoration: str | None = None
    summary: str | None = None
    reason: str | None = None
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
        source_series_uids: the series of the images it reports on (its evidence).
        groups: one per assessed image.
    """

    path: Path
    study_instance_uid: str
    series_description: str
    verification_flag: str
    algorithm: str | None
    source_series_uids: list[str]
    groups: list[GroupSummary]


@dataclass(frozen=True)
class SeriesInfo:
    """How a person names a source series: number, description, modality and the folder it came from."""

    series_number: str
    description: str
    modality: str
    folder: str

    def __str__(self) -> str:
        return (
            f"series {self.series_number or '?'} '{self.description}' ({self.modality or '?'}, {self.folder})"
        )


_TEXT_FIELDS = {
    codes.TEXT_ROLE.value: "role",
    codes.ORIGINAL_TEXT.value: "original",
    codes.REFINED_TEXT.value: "refined",
    codes.QUESTION.value: "question",
    codes.ANSWER.value: "answer",
}


def _concept(item: Dataset) -> str:
    seq = item.get("ConceptNameCodeSequence")
    return str(seq[0].CodeValue) if seq else ""


def _record(container: Dataset) -> TextSummary:
    values = {
        _TEXT_FIELDS[_concept(t)]: str(t.TextValue)
        for t in container.get("ContentSequence", [])
        if t.get("ValueType") == "TEXT" and _concept(t) in _TEXT_FIELDS
    }
    edits = [
        str(t.TextValue)
        for t in container.get("ContentSequence", [])
        if t.get("ValueType") == "TEXT" and _concept(t) == codes.TEXT_EDIT.value
    ]
    if values.get("answer") == EMPTY_ANSWER:  # the model answered with empty text
        values["answer"] = ""
    return TextSummary(values.pop("role", ""), **values, edits=edits)


def _group_summary(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> GroupSummary:
    out = GroupSummary()
    if group.source_images:
        image = group.source_images[0]
        out.sop_instance_uid = str(image.referenced_sop_instance_uid)
        out.frame_numbers = [int(f) for f in (image.referenced_frame_numbers or [])]
    evaluations = {e.name.value: e.value for e in group.get_qualitative_evaluations()}
    measurements = {m.name.value: m.value for m in group.get_measurements()}
    finding = evaluations.get(codes.IMAGE_ARTIFACTS.value)
    out.artifact = None if finding is None else str(finding.meaning)
    if finding == codes.NOT_ASSESSABLE:
        out.verdict = "not assessable"
    elif finding is not None and finding != codes.NO_ARTIFACT:
        out.verdict = "artifact"
    severity = evaluations.get(codes.SEVERITY.value)
    out.severity = None if severity is None else str(severity.meaning)
    level = measurements.get(codes.SEVERITY_LEVEL.value)
    out.level = None if level is None else int(level)
    probability = measurements.get(codes.PROBABILITY.value)
    out.probability = None if probability is None else float(probability)
    calibration = evaluations.get(codes.CALIBRATION_APPLIED.value)
    out.calibration_applied = None if calibration is None else calibration == codes.YES
    for item in group[0].ContentSequence:  # our own items: the plain verdict and the text records
        concept = _concept(item)
        if item.ValueType == "TEXT" and concept == codes.ASSESSMENT_SUMMARY.value:
            out.summary = str(item.TextValue)
        elif item.ValueType == "TEXT" and concept == codes.NOT_ASSESSABLE_REASON.value:
            out.reason = str(item.TextValue)
        elif item.ValueType == "TEXT" and concept == codes.RESTORATION.value:
            out.restoration = str(item.TextValue)
        elif item.ValueType == "TEXT" and concept == codes.CALIBRATION_NOTE.value:
            out.calibration_note = str(item.TextValue)
        elif item.ValueType == "CONTAINER" and concept == codes.TEXT_RECORD.value:
            out.texts.append(_record(item))
    return out


def summarize_sr(path: str | os.PathLike[str]) -> SRSummary:
    """Summarise an IMC SR file.

    Raises:
        ValueError: the file is not an SR with a TID 1500 measurement report.
    """
    file = Path(path)
    try:
        sr = hd.sr.srread(file)
    except (ValueError, AttributeError, InvalidDicomError) as exc:
        raise ValueError(f"{file}: not a structured report highdicom can read ({exc})") from exc
    report = sr.content
    if not isinstance(report, hd.sr.MeasurementReport):
        raise ValueError(f"{file}: the SR's content is not a TID 1500 measurement report")  # noqa: TRY004 (a file, not a type)
    groups = report.get_image_measurement_groups()
    algorithm = None
    for group in groups:
        for item in group[0].ContentSequence:
            if item.ValueType == "TEXT" and _concept(item) == "111001":  # Algorithm Name (TID 4019)
                algorithm = str(item.TextValue)
                break
        if algorithm:
            break
    series = [
        str(s.SeriesInstanceUID)
        for study in sr.get("CurrentRequestedProcedureEvidenceSequence", [])
        for s in study.get("ReferencedSeriesSequence", [])
    ]
    return SRSummary(
        path=file,
        study_instance_uid=str(sr.StudyInstanceUID),
        series_description=str(sr.get("SeriesDescription", "")),
        verification_flag=str(sr.get("VerificationFlag", "")),
        algorithm=algorithm,
        source_series_uids=list(dict.fromkeys(series)),
        groups=[_group_summary(g) for g in groups],
    )


def source_series(folder: str | os.PathLike[str], uids: Iterable[str] | None = None) -> dict[str, SeriesInfo]:
    """Series number, description, modality and folder of the DICOM series under ``folder``, by UID.

    Reads headers only (no pixel data); files that are not DICOM are passed over. With ``uids``, stops
    once each of them is found.
    """
    root = Path(folder)
    wanted = None if uids is None else set(uids)
    found: dict[str, SeriesInfo] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if wanted is not None and wanted <= set(found):
            break
        try:
            ds = pydicom.dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=["SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality"],
            )
        except (InvalidDicomError, OSError, ValueError, AttributeError):
            continue
        uid = str(ds.get("SeriesInstanceUID", ""))
        if not uid or uid in found:
            continue
        found[uid] = SeriesInfo(
            str(ds.get("SeriesNumber", "") or ""),
            str(ds.get("SeriesDescription", "") or ""),
            str(ds.get("Modality", "") or ""),
            str(path.parent.relative_to(root)) if path.parent != root else ".",
        )
    return found

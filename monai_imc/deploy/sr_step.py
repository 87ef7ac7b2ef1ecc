"""The SR step of a series (:class:`~monai_imc.deploy.work.SeriesWork`): its IMC SR encoded beside the model
as the series is answered (:func:`draft_sr`, in the :data:`SR_WORKER` process) and saved atomically by the SR
stage (:func:`write_sr`); :func:`sr_file_name` names the file."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

from pydicom.dataset import Dataset

from monai_imc.deploy.work import AssessedView, SeriesWork
from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment, TextRecord
from monai_imc.dicom.sr_file import EncodedSR, encode_imc_sr, save_encoded_sr
from monai_imc.workers import beside

__all__ = ["SR_WORKER", "calibration_note", "draft_sr", "sr_encoder", "sr_file_name", "write_sr"]


def calibration_note(item: AssessedView) -> str | None:
    """Why PDC left the artifact found in a view uncalibrated (``None`` when it calibrated, or found none):
    the calibration record's reason, e.g. a level below the one PDC calibrates from."""
    if item.perception.noise is None or item.calibration is None or item.calibration.applied:
        return None
    if item.restoration is not None and item.restoration.applied and item.calibration.reason == "gate: clean":
        return "the restored image was perceived clean"  # calibration acts on the restored view
    return item.calibration.reason


def sr_file_name(series_uid: str) -> str:
    """The SR's file name for a source series."""
    return f"IMC_SR_{series_uid}.dcm"


def sr_encoder(
    work: SeriesWork, algorithm: AlgorithmInfo, series_number: int = 900
) -> functools.partial[EncodedSR]:
    """:func:`~monai_imc.dicom.sr_file.encode_imc_sr` bound to the series' IMC SR (one TID 1501 group per
    assessed view): call it to encode the SR; it pickles, with the source datasets without their pixel data
    (the SR needs their patient, study and instance attributes only), so a worker process can call it."""
    if not work.assessed:
        raise ValueError("no assessed view to report")
    headers: dict[int, Dataset] = {}
    assessments = [
        ImageAssessment(
            _header(item.source, headers),
            artifact=item.perception.noise,
            severity=item.perception.severity,
            probability=min(1.0, max(0.0, float(item.perception.confidence)))
            if item.perception.assessable
            else None,
            calibration_applied=bool(item.calibration and item.calibration.applied),
            frame_number=item.view.frame_number,
            not_assessable=None if item.perception.assessable else item.perception.reason,
            restoration=None if item.restoration is None else item.restoration.summary,
            calibration_note=calibration_note(item),
        )
        for item in work.assessed
    ]
    replies = {(a.sop_instance_uid, a.frame_number, a.text_index): a for a in work.answers}
    records = []
    for item in work.assessed:
        uid, frame = item.view.sop_instance_uid, item.view.frame_number
        for index, text in enumerate(work.refined):
            reply = replies.get((uid, frame, index))
            if reply is None:
                continue
            records.append(
                TextRecord(
                    text.source.role,
                    text.source.text,
                    text.text,
                    reply.question,
                    reply.answer,
                    uid,
                    frame if _multi_group(work, uid) else None,
                    text.edits,
                )
            )
    for text in work.refined:
        if not text.source.ask:
            records.append(TextRecord(text.source.role, text.source.text, text.text, edits=text.edits))
    description = f"IMC assessment of {work.modality or 'images'} (unverified)"[:64]
    return functools.partial(
        encode_imc_sr,
        assessments,
        records,
        algorithm,
        series_number=series_number,
        series_description=description,
    )


SR_WORKER = "imc-sr"
"""The worker process that encodes SRs beside the model (:func:`draft_sr`, :mod:`monai_imc.workers`)."""


def draft_sr(work: SeriesWork, algorithm: AlgorithmInfo, series_number: int = 900) -> SeriesWork:
    """Start encoding the series' SR in the :data:`SR_WORKER` process, beside the model's work on the next
    series; :func:`write_sr` saves it. Nothing is written here, and an error (an SR the standard would refuse)
    reaches :func:`write_sr`, which fails the series with it."""
    if not work.active or not work.assessed:
        return work
    draft = beside(SR_WORKER, sr_encoder(work, algorithm, series_number))
    return dataclasses.replace(work, sr_draft=draft)


def write_sr(
    work: SeriesWork, folder: str | os.PathLike[str], algorithm: AlgorithmInfo, series_number: int = 900
) -> SeriesWork:
    """Write the series' IMC SR atomically into ``folder``: one TID 1501 group per assessed view. The SR
    :func:`draft_sr` encoded when there is one (the same content), else encoded here."""
    if not work.assessed:
        return work.fail("no assessed view to report")
    if work.sr_draft is not None:
        encoded = work.sr_draft.result()
    else:
        encoded = sr_encoder(work, algorithm, series_number)()
    path = save_encoded_sr(Path(folder) / sr_file_name(work.series_uid), encoded)
    return dataclasses.replace(work, status="written", sr_path=path, sr_draft=None)


def _header(ds: Dataset, seen: dict[int, Dataset]) -> Dataset:
    """``ds`` without its pixel data (group 7FE0), one copy per dataset; the elements are shared, not copied."""
    if id(ds) not in seen:
        header = Dataset()
        for element in ds:
            if element.tag.group != 0x7FE0:
                header.add(element)
        seen[id(ds)] = header
    return seen[id(ds)]


def _multi_group(work: SeriesWork, sop_instance_uid: str) -> bool:
    """Whether several views of the series come from one instance (frames of a multi-frame image)."""
    return sum(1 for item in work.assessed if item.view.sop_instance_uid == sop_instance_uid) > 1

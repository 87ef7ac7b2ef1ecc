"""The IMC structured report: a Comprehensive 3D SR (TID 1500) that joins the source study.

Content tree (see ``docs/sr.md`` for a ``dsrdump`` of one)::

    Imaging Measurement Report (TID 1500)
      Language, Observation context (device observer: the model), Procedure reported
      Imaging Measurements
        Measurement Group (TID 1501), one per assessed image
          Tracking Identifier / Tracking Unique Identifier
          Algorithm Identification (TID 4019): model id, monai-imc version, parameters (bank hash)
          Source image for measurement group (SOP instance, frame)
          Probability (DCM 122157)                         NUM, unit {probability} (not when not assessable)
          IMC severity level (99IMC)                       NUM, unit {level}, when an artifact is found
          Image artifact(s) (DCM 111207) = artifact code   CODE (None: clean; Not assessable (99IMC))
          Severity (SCT 246112005) = Mild/Moderate/Severe  CODE, when an artifact is found
          Feature calibration applied (99IMC) = Yes/No     CODE
          IMC assessment (99IMC)                           TEXT, the verdict in plain words
          Reason not assessable (99IMC)                    TEXT, when not assessable
          Image restoration (99IMC)                        TEXT, when restoration ran: what was done
          Clinical text record (99IMC)                     CONTAINER, one per text record (sr_text.py):
            Clinical text role / Original / Refined / edits / Question / Answer   TEXT

The SR is marked unverified (VerificationFlag UNVERIFIED) and complete (CompletionFlag COMPLETE); its
patient and study attributes come from the source images (highdicom copies them from the evidence), so a
PACS files it into the original study. Texts, including those taken from DICOM fields, are stored as
given: never parsed or interpreted. The original text is always written, whatever refinement did.

The SR is built here (:func:`build_imc_sr`) and written as a file by :mod:`monai_imc.dicom.sr_file`.

Usage::

    from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment, TextRecord
    from monai_imc.dicom.sr_file import write_imc_sr

    path = write_imc_sr(
        "out/imc_sr.dcm",
        [ImageAssessment(ds, artifact="motion", severity=3, probability=0.91, calibration_applied=True)],
        [TextRecord("question", original="is ther a fracture?", refined="Is there a fracture?",
                    question="Is there a fracture?", answer="No fracture.")],
        AlgorithmInfo(model_id="tiny-llava", bank_hash="sha256:..."),
    )
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from highdicom.sr import (
    AlgorithmIdentification,
    Comprehensive3DSR,
    DeviceObserverIdentifyingAttributes,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    QualitativeEvaluation,
    SourceImageForMeasurementGroup,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

import monai_imc
from monai_imc.dicom import codes as imc_codes
from monai_imc.dicom import vr
from monai_imc.dicom.sr_text import TextRecord, text_item, text_record_container
from monai_imc.dicom.uids import sr_uids

__all__ = ["AlgorithmInfo", "ImageAssessment", "TextRecord", "build_imc_sr"]

logger = logging.getLogger(__name__)

_MANUFACTURER = "monai-imc"


@dataclass(frozen=True)
class ImageAssessment:
    """What IMC found in one assessed image.

    Attributes:
        source: the source image's dataset (pixel data not needed; patient/study attributes and UIDs are).
        artifact: the image noise name found (``"motion"``, ``"jpeg"`` ...), ``None`` for clean.
        severity: the severity level 1..5 of the artifact, ``None`` for clean.
        probability: the perceiver's probability of the reported finding (artifact, or clean), in [0, 1];
            ``None`` (not written) when the image is not assessable.
        calibration_applied: whether PDC calibrated this image's features before the answer.
        frame_number: 1-based frame of a multi-frame source, ``None`` for a single-frame one.
        not_assessable: why the perceiver could not judge the image (then no artifact, no severity, no
            calibration); ``None`` when it could.
        restoration: what perceiver-guided restoration did to the image before the model saw it
            (:attr:`monai_imc.restore.Restoration.summary`); ``None`` when restoration was off (not written).
        calibration_note: why PDC left the artifact found uncalibrated; ``None`` otherwise (not written).
    """

    source: Dataset
    artifact: str | None
    severity: int | None
    probability: float | None
    calibration_applied: bool = False
    frame_number: int | None = None
    not_assessable: str | None = None
    restoration: str | None = None
    calibration_note: str | None = None

    @property
    def summary(self) -> str:
        """The verdict in plain words, as written to the SR."""
        if self.not_assessable is not None:
            return f"not assessable: {self.not_assessable}"
        if self.artifact is None:
            return f"no artifact detected (probability {float(self.probability or 0.0):.2f})"
        assert self.severity is not None
        return (
            f"{self.artifact} artifact ({imc_codes.artifact_code(self.artifact).meaning}), severity "
            f"{self.severity} of 5 ({imc_codes.severity_code(self.severity).meaning}), "
            f"probability {float(self.probability or 0.0):.2f}"
        )

    def __post_init__(self) -> None:
        uid = self.source.get("SOPInstanceUID", "(none)")
        if self.not_assessable is not None:
            if not self.not_assessable.strip():
                raise ValueError(f"SOP Instance UID {uid}: a not-assessable image needs its reason")
            if self.artifact is not None or self.severity is not None or self.calibration_applied:
                raise ValueError(
                    f"SOP Instance UID {uid}: a not-assessable image claims no artifact, severity or calibration"
                )
        elif self.probability is None:
            raise ValueError(f"SOP Instance UID {uid}: an assessed image needs a probability")
        imc_codes.artifact_code(self.artifact)  # raises for an unknown noise name
        if self.artifact is None and self.severity is not None:
            raise ValueError(f"SOP Instance UID {uid}: a clean image has no severity, got {self.severity}")
        if self.artifact is not None:
            if self.severity is None:
                raise ValueError(f"SOP Instance UID {uid}: artifact {self.artifact!r} needs a severity 1..5")
            imc_codes.severity_code(self.severity)
        if self.probability is not None and not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError(f"SOP Instance UID {uid}: probability must be in [0, 1], got {self.probability}")
        if self.restoration is not None and not self.restoration.strip():
            raise ValueError(
                f"SOP Instance UID {uid}: an empty restoration record (None when restoration was off)"
            )
        if self.calibration_note is not None and (
            self.artifact is None or self.calibration_applied or not self.calibration_note.strip()
        ):
            raise ValueError(
                f"SOP Instance UID {uid}: a calibration note says why a found artifact was not calibrated"
            )
        if self.frame_number is not None and self.frame_number < 1:
            raise ValueError(f"SOP Instance UID {uid}: frame numbers start at 1, got {self.frame_number}")
        for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"):
            if not self.source.get(kw):
                raise ValueError(f"SOP Instance UID {uid}: the source dataset has no {kw}")


@dataclass(frozen=True)
class AlgorithmInfo:
    """The algorithm that made the findings (TID 4019).

    Attributes:
        model_id: the MLLM's identifier (e.g. a Hugging Face repo id or the bundle's model name).
        bank_hash: the prototype bank's fingerprint.
        version: the monai-imc version (default: the installed one).
    """

    model_id: str
    bank_hash: str
    version: str = monai_imc.__version__

    def identification(self) -> AlgorithmIdentification:
        """The TID 4019 Algorithm Identification content items."""
        return AlgorithmIdentification(
            name=f"monai-imc IMC ({self.model_id})",
            version=self.version,
            parameters=[
                f"model={self.model_id}",
                f"prototype_bank={self.bank_hash}",
                f"monai_imc={self.version}",
            ],
        )


def build_imc_sr(
    assessments: Sequence[ImageAssessment],
    texts: Sequence[TextRecord],
    algorithm: AlgorithmInfo,
    series_number: int = 900,
    instance_number: int = 1,
    series_description: str = "IMC artifact assessment (unverified)",
    institution_name: str | None = None,
) -> Comprehensive3DSR:
    """Build the IMC Comprehensive 3D SR in memory.

    Args:
        assessments: one per assessed image, all of one study.
        texts: the clinical text records (attached to every group, or to the group of
            ``TextRecord.sop_instance_uid``).
        algorithm: model id, bank hash and version, recorded per group (TID 4019).
        series_number: SeriesNumber of the new SR series.
        instance_number: InstanceNumber of the SR.
        series_description: SeriesDescription of the new SR series.
        institution_name: InstitutionName, when known.

    Returns:
        The SR dataset; its Series and SOP Instance UIDs derive from the source series and the algorithm
        (:func:`monai_imc.dicom.uids.sr_uids`), so a rerun replaces it.

    Raises:
        ValueError: no assessment, assessments of several studies, or a text bound to an unknown image.
    """
    if not assessments:
        raise ValueError("no image assessment given: an SR needs at least one source image")
    assessments, header_texts = _conformed(
        assessments
    )  # source values that break their VR (monai_imc.dicom.vr)
    texts = [*texts, *header_texts]
    studies = {str(a.source.StudyInstanceUID) for a in assessments}
    if len(studies) > 1:
        raise ValueError(f"assessments span {len(studies)} studies; one SR belongs to one study")
    uids = {str(a.source.SOPInstanceUID) for a in assessments}
    for record in texts:
        if record.sop_instance_uid is not None and record.sop_instance_uid not in uids:
            raise ValueError(
                f"text record {record.role!r} refers to SOP Instance UID {record.sop_instance_uid}, "
                "which is not among the assessed images"
            )

    groups = [
        _group(
            i,
            assessment,
            [t for t in texts if t.applies_to(assessment)],
            algorithm,
        )
        for i, assessment in enumerate(assessments, start=1)
    ]
    observer = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[_MANUFACTURER, algorithm.model_id]),
            name=f"monai-imc {algorithm.model_id}",
            manufacturer_name=_MANUFACTURER,
            model_name=algorithm.model_id,
        ),
    )
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=observer),
        procedure_reported=imc_codes.IMAGING_PROCEDURE,
        imaging_measurements=groups,
        referenced_images=None,
    )
    evidence = _unique_sources(assessments)
    sources = ",".join(sorted({str(ds.get("SeriesInstanceUID", "")) for ds in evidence}))
    series_uid, sop_uid = sr_uids(sources, algorithm)  # deterministic: a rerun replaces the SR
    sr = Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=instance_number,
        manufacturer=_MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=institution_name,
        series_description=series_description,
    )
    sr.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: clinical texts may be in any language
    _state_deidentification(sr, evidence)
    scheme = Dataset()  # declare our private coding scheme (SOP Common, Coding Scheme Identification)
    scheme.CodingSchemeDesignator = imc_codes.IMC_SCHEME
    scheme.CodingSchemeName = "monai-imc codes"
    scheme.CodingSchemeResponsibleOrganization = "monai-imc developers"
    sr.CodingSchemeIdentificationSequence = [*sr.get("CodingSchemeIdentificationSequence", []), scheme]
    return sr


# --- internals ----------------------------------------------------------------------------------------


def _conformed(assessments: Sequence[ImageAssessment]) -> tuple[list[ImageAssessment], list[TextRecord]]:
    """The assessments with header copies of their sources whose values fit their VRs, and one text record
    per changed value keeping the original in full."""
    out, records = [], {}
    for assessment in assessments:
        header, changes = vr.conform_source(assessment.source)
        out.append(dataclasses.replace(assessment, source=header))
        for c in changes:
            role = f"{c.keyword} of the source ({c.vr}; {c.reason})"
            records.setdefault((c.keyword, c.original), TextRecord(role, c.original))
    return out, list(records.values())


def _state_deidentification(sr: Dataset, evidence: Sequence[Dataset]) -> None:
    """Keep the Patient module valid when it says the identity was removed.

    The SR copies Patient Identity Removed from its sources; ``YES`` then requires De-identification
    Method or its code sequence (Type 1C). Sources that claim ``YES`` without saying how (pydicom's
    ``693_UNCR.dcm`` does) would make an invalid SR: take the method from a source that states it, else
    say that the sources did not.
    """
    if str(sr.get("PatientIdentityRemoved", "")).upper() != "YES":
        return
    if "DeidentificationMethod" in sr or "DeidentificationMethodCodeSequence" in sr:
        return
    for ds in evidence:
        if ds.get("DeidentificationMethod"):
            sr.DeidentificationMethod = ds.DeidentificationMethod
            return
        if ds.get("DeidentificationMethodCodeSequence"):
            sr.DeidentificationMethodCodeSequence = ds.DeidentificationMethodCodeSequence
            return
    sr.DeidentificationMethod = "not stated in the source images"


def _unique_sources(assessments: Sequence[ImageAssessment]) -> list[Dataset]:
    seen: dict[str, Dataset] = {}
    for a in assessments:
        seen.setdefault(str(a.source.SOPInstanceUID), a.source)
    return list(seen.values())


def _group(
    index: int, assessment: ImageAssessment, texts: Sequence[TextRecord], algorithm: AlgorithmInfo
) -> MeasurementsAndQualitativeEvaluations:
    source = assessment.source
    measurements = []
    if assessment.probability is not None and assessment.not_assessable is None:
        measurements.append(
            Measurement(
                name=imc_codes.PROBABILITY,
                value=float(assessment.probability),
                unit=imc_codes.PROBABILITY_UNIT,
            )
        )
    finding = imc_codes.NOT_ASSESSABLE if assessment.not_assessable is not None else None
    evaluations = [
        QualitativeEvaluation(
            imc_codes.IMAGE_ARTIFACTS, finding or imc_codes.artifact_code(assessment.artifact)
        )
    ]
    if assessment.severity is not None:
        measurements.append(
            Measurement(
                name=imc_codes.SEVERITY_LEVEL,
                value=float(assessment.severity),
                unit=imc_codes.SEVERITY_LEVEL_UNIT,
            )
        )
        evaluations.append(
            QualitativeEvaluation(imc_codes.SEVERITY, imc_codes.severity_code(assessment.severity))
        )
    evaluations.append(
        QualitativeEvaluation(
            imc_codes.CALIBRATION_APPLIED, imc_codes.YES if assessment.calibration_applied else imc_codes.NO
        )
    )
    frames = None if assessment.frame_number is None else [assessment.frame_number]
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=generate_uid(), identifier=f"IMC image {index}"),
        algorithm_id=algorithm.identification(),
        measurements=measurements,
        qualitative_evaluations=evaluations,
        source_images=[
            SourceImageForMeasurementGroup(
                referenced_sop_class_uid=str(source.SOPClassUID),
                referenced_sop_instance_uid=str(source.SOPInstanceUID),
                referenced_frame_numbers=frames,
            )
        ],
    )
    items = group[0].ContentSequence
    items.append(text_item(imc_codes.ASSESSMENT_SUMMARY, assessment.summary))
    if assessment.not_assessable is not None:
        items.append(text_item(imc_codes.NOT_ASSESSABLE_REASON, assessment.not_assessable))
    if assessment.restoration is not None:
        items.append(text_item(imc_codes.RESTORATION, assessment.restoration))
    if assessment.calibration_note is not None:
        items.append(text_item(imc_codes.CALIBRATION_NOTE, assessment.calibration_note))
    items += [text_record_container(record) for record in texts]  # each text in a container of its own
    return group


"""The clinical texts of the IMC SR: one container per text (its role, the text as received, the refined text
and each edit, the question put to the model and its answer), and the TEXT content items they are made of.

Part of :mod:`monai_imc.dicom.sr` (which writes the SR; import :class:`TextRecord` from there or here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from highdicom.sr import ContainerContentItem, RelationshipTypeValues, TextContentItem
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from monai_imc.dicom import codes as imc_codes

__all__ = ["Assessed", "TextRecord", "text_item", "text_record_container"]


class Assessed(Protocol):
    """What a text record is matched against: an assessed image (:class:`monai_imc.dicom.sr.ImageAssessment`)."""

    source: Dataset
    frame_number: int | None


@dataclass(frozen=True)
class TextRecord:
    """One clinical text, as received and as refined, with the question and the model's answer.

    Attributes:
        role: where the text came from or what it is (``"question"``, ``"ReasonForTheRequestedProcedure"``).
        original: the text exactly as received; always written to the SR.
        refined: the refined text (``None`` when refinement did not run).
        edits: each change refinement made, in words (``'Iocoted' -> 'Located' (specialist:spelling)``).
        question: the question put to the model (``None`` when none).
        answer: the model's answer or draft report (``None`` when none).
        sop_instance_uid: attach the record to the group of this image only; ``None``: every group.
        frame_number: with ``sop_instance_uid``, attach it to the group of this frame only (a multi-frame
            image assessed at several frames); ``None``: every group of that image.
    """

    role: str
    original: str
    refined: str | None = None
    question: str | None = None
    answer: str | None = None
    sop_instance_uid: str | None = None
    frame_number: int | None = None
    edits: tuple[str, ...] = ()

    def applies_to(self, assessment: Assessed) -> bool:
        """Whether this record belongs in the measurement group of ``assessment``."""
        if self.sop_instance_uid is None:
            return True
        if self.sop_instance_uid != str(assessment.source.SOPInstanceUID):
            return False
        return self.frame_number is None or self.frame_number == assessment.frame_number

    def __post_init__(self) -> None:
        named = [(n, getattr(self, n)) for n in ("role", "original", "refined", "question", "answer")]
        for name, value in named + [("edits", e) for e in self.edits]:
            if value is not None and not isinstance(value, str):
                raise TypeError(f"TextRecord.{name} must be a str, got {type(value).__name__}")
        if not self.role.strip():
            raise ValueError("TextRecord.role is empty")
        if self.frame_number is not None and self.sop_instance_uid is None:
            raise ValueError(f"TextRecord {self.role!r}: a frame number needs a SOP Instance UID")


def text_item(concept: Code, value: str) -> TextContentItem:
    """A TEXT content item that the item above it CONTAINS."""
    return TextContentItem(name=concept, value=value, relationship_type=RelationshipTypeValues.CONTAINS)


#: What the SR says for a question the model answered with empty text (a TEXT item cannot be empty, and a
#: question without an answer item would read as not asked); the summary reads it back as ``""``.
EMPTY_ANSWER = "(no answer: the model returned empty text)"


def answer_text(record: TextRecord) -> str | None:
    """The SR's answer item of a record: its answer, :data:`EMPTY_ANSWER` for a question answered with blank
    text, ``None`` when nothing was asked."""
    if record.answer is None or record.answer.strip():
        return record.answer
    return EMPTY_ANSWER if record.question else None


def text_record_container(record: TextRecord) -> ContainerContentItem:
    """The container of one text record: its items in order, the blank ones left out (a TEXT item cannot
    be empty: type 1)."""
    container = ContainerContentItem(
        name=imc_codes.TEXT_RECORD, relationship_type=RelationshipTypeValues.CONTAINS
    )
    container.ContentSequence = [
        text_item(concept, value)
        for concept, value in (
            (imc_codes.TEXT_ROLE, record.role),
            (imc_codes.ORIGINAL_TEXT, record.original),
            (imc_codes.REFINED_TEXT, record.refined),
            *((imc_codes.TEXT_EDIT, edit) for edit in record.edits),
            (imc_codes.QUESTION, record.question),
            (imc_codes.ANSWER, answer_text(record)),
        )
        if value and value.strip()
    ]
    return container

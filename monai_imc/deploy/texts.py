"""The clinical texts of a study: standing questions, DICOM text fields and a JSON sidecar.

Every text goes through SMS before use, and the SR keeps it as received. Texts are data: they are quoted in
prompts and never followed as instructions.

- **Standing questions** (bundle config ``standing_questions``): asked of every assessed image.
- **DICOM fields** (bundle config ``text_fields``, e.g. ReasonForTheRequestedProcedure,
  RequestedProcedureDescription, StudyDescription): read from the image dataset and from its Request
  Attributes Sequence; refined and kept as context, not asked.
- **Sidecar** (``imc_questions.json`` anywhere in the input folder)::

      {"study_instance_uid": "1.2.3...",          (optional: without it, every study of the input)
       "questions": ["Is ther a pnuemothorax?"],   (asked of every image, like standing questions)
       "texts": {"draft_report": "..."}}           (refined and kept, not asked)

Usage::

    sidecars, problems = load_sidecars(input_folder, "imc_questions.json")
    texts = collect_texts(dataset, settings, sidecars)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = ["ClinicalText", "Sidecar", "collect_texts", "load_sidecars", "read_sidecar"]

logger = logging.getLogger(__name__)

STANDING = "standing question"
"""Role of a standing question of the bundle config."""
SIDECAR_QUESTION = "sidecar question"
"""Role of a question from the study's JSON sidecar."""


@dataclass(frozen=True)
class ClinicalText:
    """One text to refine, and whether the model is asked it as a question.

    Attributes:
        role: where it came from: :data:`STANDING`, a DICOM keyword, :data:`SIDECAR_QUESTION` or
            ``sidecar:<name>``.
        text: the text exactly as received.
        ask: put the (refined) text to the model as a question about each image.
    """

    role: str
    text: str
    ask: bool


@dataclass(frozen=True)
class Sidecar:
    """A study's JSON sidecar.

    Attributes:
        path: the file.
        study_instance_uid: the study it is for; ``None``: every study of the input.
        questions: questions to ask.
        texts: named texts to refine and keep (e.g. ``draft_report``).
    """

    path: Path
    study_instance_uid: str | None
    questions: tuple[str, ...] = ()
    texts: Mapping[str, str] = field(default_factory=dict)

    def applies_to(self, study_instance_uid: str) -> bool:
        """Whether this sidecar is for ``study_instance_uid``."""
        return self.study_instance_uid in (None, study_instance_uid)


def read_sidecar(path: str | os.PathLike[str]) -> Sidecar:
    """Read and check one sidecar file.

    Raises:
        ValueError: not JSON, or not of the documented shape; the message names the file.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a readable JSON sidecar: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(  # noqa: TRY004  (bad content, not a caller's wrong type)
            f"{file}: a sidecar must be a JSON object, got {type(data).__name__}"
        )
    unknown = set(data) - {"study_instance_uid", "questions", "texts"}
    if unknown:
        raise ValueError(f"{file}: unknown keys {sorted(unknown)}; use study_instance_uid, questions, texts")
    study = data.get("study_instance_uid")
    questions = data.get("questions", [])
    texts = data.get("texts", {})
    if study is not None and (not isinstance(study, str) or not study.strip()):
        raise ValueError(f"{file}: study_instance_uid must be a non-empty string")
    if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
        raise ValueError(f"{file}: questions must be a list of non-empty strings")
    if not isinstance(texts, dict) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip() for k, v in texts.items()
    ):
        raise ValueError(f"{file}: texts must map names to non-empty strings")
    return Sidecar(file, study.strip() if study else None, tuple(questions), dict(texts))


def load_sidecars(folder: str | os.PathLike[str], name: str) -> tuple[list[Sidecar], list[tuple[Path, str]]]:
    """Every sidecar named ``name`` under ``folder``, and the ``(path, reason)`` of those refused."""
    sidecars: list[Sidecar] = []
    problems: list[tuple[Path, str]] = []
    root = Path(folder)
    if not root.is_dir():
        return sidecars, problems
    for path in sorted(root.rglob(name)):
        try:
            sidecars.append(read_sidecar(path))
        except ValueError as exc:
            logger.warning("%s", exc)
            problems.append((path, str(exc).removeprefix(f"{path}: ")))
    return sidecars, problems


def _field_values(ds: Dataset, keyword: str) -> list[str]:
    """The non-empty values of ``keyword`` in ``ds`` and in its Request Attributes Sequence items."""
    values: list[str] = []
    sources = [ds, *list(ds.get("RequestAttributesSequence", []) or [])]
    for source in sources:
        value = source.get(keyword)
        if value is None:
            continue
        items = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
        for item in items:
            text = str(item).strip()
            if text and text not in values:
                values.append(text)
    return values


def collect_texts(
    ds: Dataset,
    standing_questions: Sequence[str],
    text_fields: Sequence[str],
    sidecars: Sequence[Sidecar] = (),
) -> list[ClinicalText]:
    """The texts of one series: standing questions, the DICOM fields of ``ds``, the study's sidecars.

    Args:
        ds: a dataset of the series (study-level fields and request attributes are read from it).
        standing_questions: the bundle's standing questions.
        text_fields: DICOM keywords to read.
        sidecars: the input's sidecars; those of other studies are ignored.

    Returns:
        The texts, duplicates (same role and text) removed, in that order.
    """
    texts: list[ClinicalText] = [ClinicalText(STANDING, q, True) for q in standing_questions]
    for keyword in text_fields:
        texts.extend(ClinicalText(keyword, value, False) for value in _field_values(ds, keyword))
    study = str(ds.get("StudyInstanceUID", ""))
    for sidecar in sidecars:
        if not sidecar.applies_to(study):
            continue
        texts.extend(ClinicalText(SIDECAR_QUESTION, q, True) for q in sidecar.questions)
        texts.extend(ClinicalText(f"sidecar:{k}", v, False) for k, v in sidecar.texts.items())
    unique: list[ClinicalText] = []
    for text in texts:
        if text not in unique:
            unique.append(text)
    return unique

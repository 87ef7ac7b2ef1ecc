"""The question row of every dataset, its canonical image key, and the held-out rule.

An image's key is ``<dataset>/<path of the image under the dataset's image root>``: ``slake/xmlab1/source.jpg``
(SLAKE's ``img_name`` under ``imgs/``) and ``vqa_rad/images/synpic54610.jpg`` (VQA-RAD's path under its
folder). The key, and only the key, decides whether a training image is held out (:func:`is_heldout_image`),
so training, bank building and the benchmark agree on which images were never trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HELDOUT_PERCENT", "VQARow", "image_key", "is_heldout_image"]

#: Percent of training images (by key) kept out of training: the validation images of every consumer.
HELDOUT_PERCENT = 5


@dataclass(frozen=True)
class VQARow:
    """One question about one image.

    Attributes:
        image: path of the image file.
        question: the question.
        answer: the reference answer.
        closed: whether the question is closed-ended (yes/no or a choice).
        dataset: ``"slake"``, ``"vqa_rad"`` or a JSONL file's stem.
        split: the split it was read for.
        image_key: the canonical key of the image (:func:`image_key`), unique per image.
        modality: SLAKE modality (``""`` for VQA-RAD).
        location: SLAKE location (``""`` for VQA-RAD).
        region: coarse body region (``head``, ``neck``, ``chest``, ``abdomen``, ``pelvis``) or ``""``.
        question_type: what the question asks about: SLAKE's ``content_type`` (``Organ``, ``Abnormality``
            ...), VQA-RAD's ``question_type`` (``PRES``, ``ABN`` ...; the first where it lists several),
            ``""`` where the dataset has none.
    """

    image: Path
    question: str
    answer: str
    closed: bool
    dataset: str
    split: str
    image_key: str
    modality: str = ""
    location: str = ""
    region: str = ""
    question_type: str = ""


def image_key(dataset: str, relative: str | Path) -> str:
    """The canonical key of an image: ``<dataset>/<relative>`` with forward slashes.

    Args:
        dataset: ``"slake"``, ``"vqa_rad"`` or a JSONL file's stem.
        relative: the image's path under the dataset's image root (SLAKE: under ``imgs/``; VQA-RAD: under
            the dataset folder, so ``images/<name>``).

    Raises:
        ValueError: an empty dataset name or path.
    """
    rel = Path(relative).as_posix().lstrip("/")
    if not dataset or not rel or rel == ".":
        raise ValueError(f"an image key needs a dataset and a path, got {dataset!r} and {str(relative)!r}")
    return f"{dataset}/{rel}"


def is_heldout_image(key: str) -> bool:
    """Whether a training image belongs to the fixed held-out slice (about :data:`HELDOUT_PERCENT` %).

    The slice depends only on the image's key (a SHA-1 hash), not on any seed, so every run and every
    consumer keeps out the same images.

    Args:
        key: :attr:`VQARow.image_key` (see :func:`image_key`).

    Returns:
        ``True`` for held-out images.
    """
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100 < HELDOUT_PERCENT

"""Where the finding is: the lesion region of a SLAKE image, for local noise (:mod:`monai_imc.noise.local`).

SLAKE ships, beside each ``imgs/xmlab<N>/source.jpg``, a ``detection.json`` of labelled boxes ``[x, y, w, h]``
in the image's pixels (organs and abnormalities) and, in the full release, a ``mask.png`` segmentation. The
lesion region is the union of the boxes whose label is an abnormality (:data:`ABNORMALITY_LABELS`: tumours,
oedema, nodules, masses, effusion, pneumonia ...; organ boxes are not lesions). Where ``mask.png`` is present
its non-zero pixels inside those boxes trace the lesion's outline instead (the shared copy of SLAKE has no
masks, so the boxes are what it uses). An image without an abnormality box, and any other dataset, has no
lesion region (``None``): local noise then uses its seeded random rectangle.

Example:
    >>> from monai_imc.data import lesion_region
    >>> found = lesion_region("../shared/data/slake/imgs/xmlab102/source.jpg")  # doctest: +SKIP
    >>> found.labels, found.mask.shape  # doctest: +SKIP
    (('Brain Edema', 'Brain Enhancing Tumor'), (240, 240))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ABNORMALITY_LABELS", "LesionRegion", "lesion_region"]

#: The ``detection.json`` labels of SLAKE that are findings, not organs.
ABNORMALITY_LABELS: frozenset[str] = frozenset(
    {
        "Atelectasis",
        "Brain Edema",
        "Brain Enhancing Tumor",
        "Brain Non-enhancing Tumor",
        "Cardiomegaly",
        "Effusion",
        "Infiltrate",
        "Liver Cancer",
        "Lung Cancer",
        "Mass",
        "Nodule",
        "Pneumonia",
        "Pneumothorax",
    }
)


@dataclass(frozen=True)
class LesionRegion:
    """The lesion region of one image.

    Attributes:
        mask: boolean ``(H, W)`` at the stored image's size, ``True`` inside the lesion(s).
        labels: the abnormality labels of its boxes, sorted, without repeats.
        source: ``"boxes"`` or ``"mask"`` (mask.png's pixels inside the boxes).
    """

    mask: np.ndarray
    labels: tuple[str, ...]
    source: str

    @property
    def fraction(self) -> float:
        """The share of the image the region covers."""
        return float(self.mask.mean())


def _resolve(image: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> Path:
    """The image file of a path, or of a ``slake/<relative>`` image key under ``root`` (default:
    ``$MONAI_IMC_DATA/slake``)."""
    path = Path(image)
    if path.is_file() or not str(image).startswith("slake/"):
        return path
    base = (
        Path(root) if root is not None else Path(os.environ.get("MONAI_IMC_DATA", "../shared/data")) / "slake"
    )
    return base / "imgs" / str(image)[len("slake/") :]


def _boxes(path: Path, width: int, height: int) -> tuple[np.ndarray, tuple[str, ...]]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        boxes = [(str(label), [float(v) for v in box]) for entry in entries for label, box in entry.items()]
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path}: not a SLAKE detection file (a list of {{label: [x, y, w, h]}}): {err}"
        ) from err
    mask = np.zeros((height, width), dtype=bool)
    labels = set()
    for label, box in boxes:
        if label not in ABNORMALITY_LABELS:
            continue
        if len(box) != 4:
            raise ValueError(f"{path}: box of {label!r} has {len(box)} numbers, expected [x, y, w, h]")
        x, y, w, h = box
        left, top = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        right, bottom = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
        if right > left and bottom > top:
            mask[top:bottom, left:right] = True
            labels.add(label)
    return mask, tuple(sorted(labels))


def lesion_region(
    image: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> LesionRegion | None:
    """The lesion region of an image (see the module docstring), or ``None`` where it has none.

    Args:
        image: the image file (a :class:`~monai_imc.data.rows.VQARow`'s ``image``) or its SLAKE image key
            (``slake/xmlab102/source.jpg``).
        root: the SLAKE folder, for a key (default ``$MONAI_IMC_DATA/slake``).

    Returns:
        The region at the stored image's size; ``None`` for an image with no ``detection.json`` beside it
        (VQA-RAD, any other file) or without an abnormality box.

    Raises:
        FileNotFoundError: the image file is missing.
        ValueError: its ``detection.json`` or ``mask.png`` is unreadable (the message names the file).
    """
    path = _resolve(image, root)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image")
    detection = path.with_name("detection.json")
    if not detection.is_file():
        return None
    with Image.open(path) as picture:
        width, height = picture.size
    boxes, labels = _boxes(detection, width, height)
    if not labels:
        return None
    mask_file = path.with_name("mask.png")
    if mask_file.is_file():
        try:
            with Image.open(mask_file) as picture:
                segmentation = np.asarray(
                    picture.convert("L").resize((width, height), Image.Resampling.NEAREST)
                )
        except OSError as err:
            raise ValueError(f"{mask_file}: unreadable mask ({err})") from err
        traced = boxes & (segmentation != 0)
        if traced.any():
            return LesionRegion(traced, labels, "mask")
    return LesionRegion(boxes, labels, "boxes")

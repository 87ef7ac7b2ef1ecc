"""Which image files a dataset spec names: SLAKE / VQA-RAD splits, or every image of a folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from monai_imc.data.vqa import load_dataset, parse_spec

__all__ = ["IMAGE_SUFFIXES", "dataset_images", "folder_images"]

IMAGE_SUFFIXES = (".dcm", ".dicom", ".png", ".jpg", ".jpeg")


def folder_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted): DICOM by suffix or with no suffix, PNG, JPEG.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no image file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or not p.suffix)
    )
    if not files:
        raise ValueError(f"{root}: no DICOM, PNG or JPEG files")
    return files


def dataset_images(spec: str, splits: Sequence[str] = ("train",)) -> list[Path]:
    """The distinct image files of a dataset's IMC ``splits`` (see :mod:`monai_imc.data.vqa`), in row order.

    Args:
        spec: ``slake:PATH``, ``vqa-rad:PATH``, ``jsonl:FILE`` or a folder (then ``splits`` is ignored).
        splits: ``train``, ``validate``, ``test``.

    Raises:
        ValueError: an unknown split, or a folder without images.
        FileNotFoundError: the dataset's files or the folder are missing.
    """
    if parse_spec(spec) is None:
        return folder_images(spec)
    images = [row.image for split in splits for row in load_dataset(spec, split)]
    return list(dict.fromkeys(images))

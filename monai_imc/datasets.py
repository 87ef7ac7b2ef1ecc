"""Where the images of the medical VQA datasets are, by split (SLAKE, VQA-RAD, or a plain folder).

Dataset specs as the command line takes them: ``slake:PATH``, ``vqa-rad:PATH`` (PATH the dataset's folder,
e.g. ``../shared/data/slake``), or a folder of DICOM / PNG / JPEG files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

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
    files = sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or not p.suffix))
    if not files:
        raise ValueError(f"{root}: no DICOM, PNG or JPEG files")
    return files


def dataset_images(spec: str, splits: Sequence[str] = ("train",)) -> list[Path]:
    """The distinct image files of a dataset's ``splits``.

    Args:
        spec: ``slake:PATH``, ``vqa-rad:PATH`` or a folder (then ``splits`` is ignored).
        splits: for SLAKE ``train``, ``validate``, ``test``; for VQA-RAD ``train``, ``test``.

    Raises:
        ValueError: an unknown dataset name or split.
        FileNotFoundError: the dataset's files are missing.
    """
    name, sep, path = spec.partition(":")
    if not sep or name.lower() not in ("slake", "vqa-rad", "vqa_rad"):
        return folder_images(spec)
    root = Path(path)
    images: list[Path] = []
    if name.lower() == "slake":
        for split in splits:
            if split not in ("train", "validate", "test"):
                raise ValueError(f"SLAKE has no split {split!r}; use train, validate or test")
            split_file = root / f"{split}.json"
            if not split_file.is_file():
                raise FileNotFoundError(f"{split_file}: SLAKE split file missing")
            images.extend(root / "imgs" / row["img_name"] for row in json.loads(split_file.read_text()))
    else:
        qa = root / "qa.jsonl"
        if not qa.is_file():
            raise FileNotFoundError(f"{qa}: VQA-RAD question file missing")
        for split in splits:
            if split not in ("train", "test"):
                raise ValueError(f"VQA-RAD has no split {split!r}; use train or test")
        rows = [json.loads(line) for line in qa.read_text().splitlines() if line.strip()]
        images.extend(root / r["image"] for r in rows if r["split"] in splits)
    return list(dict.fromkeys(images))

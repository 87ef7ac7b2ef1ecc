"""Readers of medical VQA datasets for the benchmark: SLAKE, VQA-RAD (official JSON) and generic JSONL.

Specs as the command line takes them: ``slake:PATH`` (the folder with ``train.json``, ``validate.json``,
``test.json`` and ``imgs/``), ``vqa-rad:PATH`` (the folder with ``VQA_RAD_Dataset_Public.json`` and
``images/``), ``jsonl:FILE`` (one object per line: ``image`` relative to the file, ``question``,
``answer``, ``answer_type`` CLOSED/OPEN; a site's own data).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from monai_imc.reference.data import VQARow, is_heldout_image

__all__ = ["load_dataset", "read_jsonl", "read_slake", "read_vqa_rad", "stratified_subset"]


def read_slake(folder: str | Path, split: str) -> list[VQARow]:
    """SLAKE English questions of ``split`` (``train``, ``validate`` or ``test``).

    Raises:
        ValueError: an unknown split.
        FileNotFoundError: the split file is missing.
    """
    if split not in ("train", "validate", "test"):
        raise ValueError(f"SLAKE has no split {split!r}; use train, validate or test")
    root = Path(folder)
    path = root / f"{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SLAKE split file missing")
    return [
        VQARow(image=root / "imgs" / r["img_name"], question=str(r["question"]).strip(), answer=str(r["answer"]).strip(),
               closed=str(r["answer_type"]).strip().upper() == "CLOSED", dataset="slake", split=split,
               image_key=f"slake/{r['img_name']}", modality=str(r.get("modality", "")), location=str(r.get("location", "")))
        for r in json.loads(path.read_text(encoding="utf-8"))
        if r.get("q_lang", "en") == "en"
    ]


def read_vqa_rad(folder: str | Path, split: str) -> list[VQARow]:
    """VQA-RAD questions of ``split`` from the official JSON.

    ``test``: phrase_type ``test_*``. VQA-RAD has no validation split; ``validate`` is the fixed held-out
    slice of the training images (:func:`~monai_imc.reference.data.is_heldout_image`, the slice the
    reference model was not trained on) and ``train`` the rest.

    Raises:
        ValueError: an unknown split.
        FileNotFoundError: the JSON is missing.
    """
    if split not in ("train", "validate", "test"):
        raise ValueError(f"VQA-RAD has no split {split!r}; use train, validate or test")
    root = Path(folder)
    path = root / "VQA_RAD_Dataset_Public.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: VQA-RAD JSON missing")
    rows = []
    for r in json.loads(path.read_text(encoding="utf-8")):
        row_split = "test" if str(r["phrase_type"]).startswith("test") else "train"
        if row_split == "train" and is_heldout_image(f"vqa_rad/{r['image_name']}"):
            row_split = "validate"
        if row_split != split:
            continue
        rows.append(VQARow(image=root / "images" / r["image_name"], question=str(r["question"]).strip(),
                           answer=str(r["answer"]).strip(), closed=str(r["answer_type"]).strip().upper() == "CLOSED",
                           dataset="vqa_rad", split=split, image_key=f"vqa_rad/{r['image_name']}"))
    return rows


def read_jsonl(file: str | Path) -> list[VQARow]:
    """A site's own questions: one JSON object per line with image, question, answer, answer_type.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line lacks a field or is not JSON (the message names the line).
    """
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            rows.append(VQARow(image=path.parent / r["image"], question=str(r["question"]).strip(),
                               answer=str(r["answer"]).strip(), closed=str(r.get("answer_type", "OPEN")).strip().upper()
                               == "CLOSED", dataset=path.stem, split="all", image_key=f"{path.stem}/{r['image']}"))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{number}: not a VQA row ({err!r})") from err
    return rows


def load_dataset(spec: str, split: str = "test") -> list[VQARow]:
    """Read ``slake:PATH``, ``vqa-rad:PATH`` or ``jsonl:FILE`` (``split`` ignored for JSONL).

    Raises:
        ValueError: an unknown dataset name.
    """
    name, sep, path = spec.partition(":")
    key = name.lower().replace("_", "-")
    if not sep or key not in ("slake", "vqa-rad", "jsonl"):
        raise ValueError(f"unknown dataset spec {spec!r}; use slake:PATH, vqa-rad:PATH or jsonl:FILE")
    if key == "slake":
        return read_slake(path, split)
    if key == "vqa-rad":
        return read_vqa_rad(path, split)
    return read_jsonl(path)


def stratified_subset(rows: list[VQARow], limit: int, seed: int = 0) -> list[VQARow]:
    """A seeded subset of at most ``limit`` rows with the closed/open mix of ``rows``, in the original order.

    Each stratum (closed, open) gets its share of ``limit`` (rounded, at least one where the stratum is
    not empty and ``limit`` allows); the rows of a stratum are drawn with ``random.Random(seed)``.
    """
    if limit <= 0 or limit >= len(rows):
        return list(rows)
    closed = [i for i, r in enumerate(rows) if r.closed]
    opened = [i for i, r in enumerate(rows) if not r.closed]
    n_closed = round(limit * len(closed) / len(rows))
    if closed and opened and limit >= 2:
        n_closed = min(max(n_closed, 1), limit - 1)
    n_closed = min(n_closed, len(closed))
    rng = random.Random(seed)
    chosen = rng.sample(closed, n_closed) + rng.sample(opened, min(limit - n_closed, len(opened)))
    return [rows[i] for i in sorted(chosen)]

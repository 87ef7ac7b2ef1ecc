"""Readers of the medical VQA datasets: SLAKE, VQA-RAD and a site's own JSONL, by split.

Two kinds of split:

- **source splits**, as the dataset ships them (:func:`load_vqa`, :func:`source_rows`): SLAKE ``train`` /
  ``validate`` / ``test``, VQA-RAD ``train`` / ``test``. The reference model trains on the *training pool*
  (SLAKE train + validate, VQA-RAD train) minus its held-out images.
- **IMC splits**, what every consumer (bank building, the benchmark, the measurements) uses
  (:func:`read_slake`, :func:`read_vqa_rad`, :func:`load_dataset`): ``train`` = the training pool without
  the held-out images, ``validate`` = the held-out images of the training pool
  (:func:`~monai_imc.data.rows.is_heldout_image`, never trained on), ``test`` = the source test split.

Specs as the command line takes them: ``slake:PATH`` (the folder with ``train.json``, ``validate.json``,
``test.json`` and ``imgs/``), ``vqa-rad:PATH`` (the folder with ``qa.jsonl`` or the official
``VQA_RAD_Dataset_Public.json``, and ``images/``), ``jsonl:FILE`` (one object per line: ``image`` relative to
the file, ``question``, ``answer``, ``answer_type`` CLOSED/OPEN; a site's own data).

Example:
    >>> from monai_imc.data import load_dataset
    >>> rows = load_dataset("slake:../shared/data/slake", "validate")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from monai_imc.data.rows import VQARow, image_key, is_heldout_image

__all__ = [
    "SPLITS",
    "load_dataset",
    "load_vqa",
    "parse_spec",
    "read_jsonl",
    "read_slake",
    "read_vqa_rad",
    "source_rows",
    "training_pool",
]

#: The IMC splits every consumer reads.
SPLITS: tuple[str, ...] = ("train", "validate", "test")
_SOURCE_SPLITS = {"slake": ("train", "validate", "test"), "vqa_rad": ("train", "test")}
_POOL = {"slake": ("train", "validate"), "vqa_rad": ("train",)}
_SLAKE_REGION = {
    "Abdomen": "abdomen",
    "Brain": "head",
    "Brain_Face": "head",
    "Brain_Tissue": "head",
    "Chest_heart": "chest",
    "Chest_lung": "chest",
    "Chest_mediastinal": "chest",
    "Lung": "chest",
    "Neck": "neck",
    "Pelvic Cavity": "pelvis",
}
_VQARAD_REGION = {"HEAD": "head", "CHEST": "chest", "ABD": "abdomen"}


def _closed(record: dict[str, Any]) -> bool:
    return str(record.get("answer_type", "OPEN")).strip().upper() == "CLOSED"


def _slake(folder: Path, source_split: str) -> list[VQARow]:
    path = folder / f"{source_split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SLAKE split file missing")
    rows = []
    for r in json.loads(path.read_text(encoding="utf-8")):
        if r.get("q_lang", "en") != "en":
            continue
        location = str(r.get("location", ""))
        rows.append(
            VQARow(
                image=folder / "imgs" / r["img_name"],
                question=str(r["question"]).strip(),
                answer=str(r["answer"]).strip(),
                closed=_closed(r),
                dataset="slake",
                split=source_split,
                image_key=image_key("slake", r["img_name"]),
                modality=str(r.get("modality", "")),
                location=location,
                region=_SLAKE_REGION.get(location, ""),
                question_type=str(r.get("content_type", "")).strip(),
            )
        )
    return rows


def _vqa_rad(folder: Path, source_split: str) -> list[VQARow]:
    """VQA-RAD from ``qa.jsonl`` (image paths ``images/<name>``, a ``split`` field) or, without it, the
    official JSON (``image_name``; test questions have a ``test_*`` phrase_type): the same rows either way."""
    jsonl, official = folder / "qa.jsonl", folder / "VQA_RAD_Dataset_Public.json"
    if jsonl.is_file():
        lines = jsonl.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        pairs = [(r, str(r["image"]), str(r["split"])) for r in records]
    elif official.is_file():
        records = json.loads(official.read_text(encoding="utf-8"))
        pairs = [
            (r, f"images/{r['image_name']}", "test" if str(r["phrase_type"]).startswith("test") else "train")
            for r in records
        ]
    else:
        raise FileNotFoundError(f"{folder}: VQA-RAD needs qa.jsonl or VQA_RAD_Dataset_Public.json")
    return [
        VQARow(
            image=folder / relative,
            question=str(r["question"]).strip(),
            answer=str(r["answer"]).strip(),
            closed=_closed(r),
            dataset="vqa_rad",
            split=split,
            image_key=image_key("vqa_rad", relative),
            region=_VQARAD_REGION.get(str(r.get("image_organ", "")).strip().upper(), ""),
            question_type=str(r.get("question_type", "")).split(",")[0].strip().upper(),
        )
        for r, relative, split in pairs
        if split == source_split
    ]


def source_rows(dataset: str, folder: str | Path, source_split: str) -> list[VQARow]:
    """The English rows of one split as the dataset ships it, in file order.

    Args:
        dataset: ``"slake"`` or ``"vqa_rad"``.
        folder: the dataset's own folder (e.g. ``../shared/data/slake``).
        source_split: SLAKE ``train``, ``validate`` or ``test``; VQA-RAD ``train`` or ``test``.

    Raises:
        ValueError: an unknown dataset or split.
        FileNotFoundError: the dataset's files are missing.
    """
    if dataset not in _SOURCE_SPLITS:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'slake' or 'vqa_rad'")
    if source_split not in _SOURCE_SPLITS[dataset]:
        raise ValueError(
            f"{dataset} ships no split {source_split!r}; expected one of {_SOURCE_SPLITS[dataset]}"
        )
    return _slake(Path(folder), source_split) if dataset == "slake" else _vqa_rad(Path(folder), source_split)


def training_pool(dataset: str, folder: str | Path) -> list[VQARow]:
    """The rows a model may be trained or tuned on: SLAKE train + validate, VQA-RAD train (held-out
    images included; :func:`read_slake` / :func:`read_vqa_rad` split them)."""
    if dataset not in _POOL:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'slake' or 'vqa_rad'")
    return [row for split in _POOL[dataset] for row in source_rows(dataset, folder, split)]


def _imc_split(dataset: str, folder: str | Path, split: str) -> list[VQARow]:
    if split not in SPLITS:
        raise ValueError(f"{dataset} has no split {split!r}; use train, validate or test")
    if split == "test":
        rows = source_rows(dataset, folder, "test")
    else:
        held = split == "validate"
        rows = [r for r in training_pool(dataset, folder) if is_heldout_image(r.image_key) == held]
    return [r if r.split == split else replace(r, split=split) for r in rows]


def read_slake(folder: str | Path, split: str) -> list[VQARow]:
    """SLAKE English questions of the IMC ``split`` (``train``, ``validate`` or ``test``; see the module).

    Raises:
        ValueError: an unknown split.
        FileNotFoundError: a split file is missing.
    """
    return _imc_split("slake", folder, split)


def read_vqa_rad(folder: str | Path, split: str) -> list[VQARow]:
    """VQA-RAD questions of the IMC ``split`` (``train``, ``validate`` or ``test``; see the module).

    Raises:
        ValueError: an unknown split.
        FileNotFoundError: the question file is missing.
    """
    return _imc_split("vqa_rad", folder, split)


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
            rows.append(
                VQARow(
                    image=path.parent / r["image"],
                    question=str(r["question"]).strip(),
                    answer=str(r["answer"]).strip(),
                    closed=_closed(r),
                    dataset=path.stem,
                    split="all",
                    image_key=image_key(path.stem, r["image"]),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}:{number}: not a VQA row ({err!r})") from err
    return rows


def parse_spec(spec: str) -> tuple[str, str] | None:
    """``("slake" | "vqa_rad" | "jsonl", PATH)`` for a dataset spec, ``None`` for anything else (a folder)."""
    name, sep, path = spec.partition(":")
    key = name.lower().replace("-", "_")
    if not sep or key not in ("slake", "vqa_rad", "jsonl"):
        return None
    return key, path


def load_dataset(spec: str, split: str = "test") -> list[VQARow]:
    """Read ``slake:PATH``, ``vqa-rad:PATH`` or ``jsonl:FILE`` for the IMC ``split`` (ignored for JSONL).

    Raises:
        ValueError: an unknown dataset spec or split.
        FileNotFoundError: the dataset's files are missing.
    """
    parsed = parse_spec(spec)
    if parsed is None:
        raise ValueError(f"unknown dataset spec {spec!r}; use slake:PATH, vqa-rad:PATH or jsonl:FILE")
    name, path = parsed
    if name == "jsonl":
        return read_jsonl(path)
    return _imc_split(name, path, split)


def load_vqa(data: str | Path, dataset: str, split: str) -> list[VQARow]:
    """The English rows of one *source* split under the shared data folder (``data/slake``, ``data/vqa_rad``).

    Args:
        data: the shared data folder (holding ``slake/`` and ``vqa_rad/``).
        dataset: ``"slake"`` or ``"vqa_rad"``.
        split: SLAKE ``train``, ``validate`` or ``test``; VQA-RAD ``train`` or ``test``.

    Raises:
        ValueError: an unknown dataset or split.
        FileNotFoundError: the data folder lacks the files.
    """
    return source_rows(dataset, Path(data) / dataset, split)

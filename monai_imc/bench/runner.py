"""The benchmark runner: every question x condition (clean, noise x severity) x method, seeded and resumable.

Conditions: ``clean`` and every noise of the registry at every severity; an image noise corrupts the
image (the question stays clean), a text noise corrupts the question (the image stays clean). The noise
seed of a condition depends only on the image or question and the noise, so two runs agree and a level
holds the lower levels' corruption (see ``docs/noise.md``).

Methods:

- ``none``: the plain model;
- ``pdc``: perceive + calibrate the vision features (needs a prototype bank);
- ``sms``: refine the question with the SMS agents;
- ``imc``: both;
- ``repass``: the same model asked once to fix the question, its reply used as is;
- ``no-image``: the question alone (a blank image), the text-prior baseline.

Each finished (question, condition, method) is appended to a JSONL cache, so an interrupted run resumes
where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_imc.calibrate import PDCCalibrator
from monai_imc.imageio import load_view
from monai_imc.models.base import VisionFeatures, VisionLanguageModel
from monai_imc.noise import check_severity, get_noise
from monai_imc.perceive import ArtifactPerceiver
from monai_imc.prototypes import PrototypeBank
from monai_imc.reference.data import VQARow, normalize_answer
from monai_imc.reference.evaluate import token_recall
from monai_imc.reference.prompts import rewrite_messages, vqa_prompt
from monai_imc.refine import SMSRefiner

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "BenchRecord", "BenchRunner", "conditions"]

METHODS: tuple[str, ...] = ("none", "pdc", "sms", "imc", "repass", "no-image")


@dataclass(frozen=True)
class BenchRecord:
    """One answer of the benchmark.

    Attributes:
        item: ``dataset/image/question-hash``, stable across runs.
        dataset: the dataset name.
        closed: closed-ended question.
        noise: ``clean`` or the noise name; ``severity``: 0 for clean.
        method: one of :data:`METHODS`.
        question: the question the model was asked (after noise and any repair).
        answer: the model's answer; ``reference``: the dataset's answer.
        correct: exact match after normalisation; ``recall``: share of the reference's words answered.
        perceived: the perceiver's noise (``clean``), where the method perceives; ``calls``: text-agent calls.
        confidence: the model's probability of its answer, where the model gives one (else ``None``).
    """

    item: str
    dataset: str
    closed: bool
    noise: str
    severity: int
    method: str
    question: str
    answer: str
    reference: str
    correct: bool
    recall: float
    perceived: str | None = None
    calls: int = 0
    confidence: float | None = None

    @property
    def key(self) -> tuple[str, str, int, str]:
        """What identifies a record in the cache."""
        return (self.item, self.noise, self.severity, self.method)


def conditions(noises: Sequence[str], severities: Sequence[int]) -> list[tuple[str, int]]:
    """``("clean", 0)`` and every ``(noise, severity)``.

    Raises:
        ValueError: an unknown noise or a severity outside 1..5.
    """
    for n in noises:
        get_noise(n)
    return [("clean", 0)] + [(n, check_severity(s)) for n in noises for s in severities]


def _seed(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16) % (2**31 - 1)


def item_id(row: VQARow) -> str:
    """A stable id of a question: dataset, image and a hash of the question text."""
    return f"{row.image_key}#{hashlib.sha256(row.question.encode()).hexdigest()[:10]}"


class BenchRunner:
    """Run the benchmark for one model.

    Args:
        model: the multimodal LLM.
        bank: its prototype bank (needed for ``pdc`` and ``imc``).
        refiner: the SMS refiner (default: one over ``model``; needed for ``sms`` and ``imc``).
        methods: the methods to run.
        seed: the benchmark seed (noise draws).
        image_size: images are shrunk to this longest side before noise (0: as stored).
        max_new_tokens: longest answer.
        cache: JSONL file of finished records (resume); ``None``: no cache.
    """

    def __init__(
        self,
        model: VisionLanguageModel,
        bank: PrototypeBank | None = None,
        refiner: SMSRefiner | None = None,
        methods: Sequence[str] = ("none",),
        seed: int = 0,
        image_size: int = 256,
        max_new_tokens: int = 12,
        cache: str | Path | None = None,
    ) -> None:
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
        if bank is None and {"pdc", "imc"} & set(methods):
            raise ValueError("methods pdc and imc need a prototype bank of the model")
        self.model = model
        self.bank = bank
        self.refiner = refiner or SMSRefiner(model)
        self.methods = list(methods)
        self.seed = seed
        self.image_size = image_size
        self.max_new_tokens = max_new_tokens
        self.cache = Path(cache) if cache else None
        self.perceiver = ArtifactPerceiver(bank) if bank is not None else None
        self.calibrator = PDCCalibrator(bank) if bank is not None else None
        self._refined: dict[str, Any] = {}

    def _done(self) -> dict[tuple[str, str, int, str], BenchRecord]:
        if self.cache is None or not self.cache.is_file():
            return {}
        done = {}
        for number, line in enumerate(self.cache.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = BenchRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError):  # a line cut off when a run was stopped: redo it
                logger.warning("%s:%d: unreadable cache line skipped", self.cache, number)
                continue
            done[record.key] = record
        return done

    def _image(self, row: VQARow, noise: str, severity: int) -> np.ndarray:
        arr = load_view(row.image, self.image_size)
        if arr.ndim == 2:
            arr = arr[..., None]
        if noise == "clean" or get_noise(noise).modality == "text":
            return arr
        noisy = get_noise(noise).apply(np.ascontiguousarray(np.moveaxis(arr, -1, 0)), severity=severity,
                                       seed=_seed(str(self.seed), row.image_key, noise))
        return np.ascontiguousarray(np.moveaxis(noisy, 0, -1))

    def _question(self, row: VQARow, noise: str, severity: int) -> str:
        if noise == "clean" or get_noise(noise).modality == "image":
            return row.question
        return get_noise(noise).apply(row.question, severity=severity, seed=_seed(str(self.seed), item_id(row), noise))

    def run(self, rows: Sequence[VQARow], noises: Sequence[str], severities: Sequence[int],
            progress: bool = False) -> list[BenchRecord]:
        """Answer every question under every condition with every method; returns all records (cached ones too)."""
        conds = conditions(noises, severities)
        done = self._done()
        records: list[BenchRecord] = []
        by_image: dict[str, list[VQARow]] = {}
        for row in rows:
            by_image.setdefault(row.image_key, []).append(row)
        total = len(rows) * len(conds) * len(self.methods)
        bar = tqdm(total=total, desc="benchmark", disable=not progress, unit="answer")
        blank = self.model.encode_images([np.zeros((64, 64, 3), dtype=np.uint8)]) if "no-image" in self.methods else None
        for image_rows in by_image.values():
            for noise, severity in conds:
                features: VisionFeatures | None = None
                calibrated: tuple[VisionFeatures, str] | None = None
                for row in image_rows:
                    for method in self.methods:
                        key = (item_id(row), noise, severity, method)
                        if key in done:
                            records.append(done[key])
                            bar.update()
                            continue
                        if features is None:
                            features = self.model.encode_images([self._image(row, noise, severity)])
                        if calibrated is None and method in ("pdc", "imc"):
                            assert self.perceiver is not None and self.calibrator is not None
                            perception = self.perceiver.perceive(features)[0]
                            calibrated = (self.calibrator.calibrate(features, [perception])[0],
                                          perception.noise or "clean")
                        record = self._answer(row, noise, severity, method, features, calibrated, blank)
                        records.append(record)
                        self._append(record)
                        bar.update()
        bar.close()
        return records

    def _answer(self, row: VQARow, noise: str, severity: int, method: str, features: VisionFeatures,
                calibrated: tuple[VisionFeatures, str] | None, blank: VisionFeatures | None) -> BenchRecord:
        question = self._question(row, noise, severity)
        calls, perceived = 0, None
        if method in ("sms", "imc"):
            if question not in self._refined:
                self._refined[question] = self.refiner.refine(question)
            refinement = self._refined[question]
            question, calls = refinement.text, refinement.calls
        elif method == "repass":
            reply = " ".join(self.model.chat(rewrite_messages(question), max_new_tokens=48).split())
            question, calls = reply or question, 1
        use = features
        if method in ("pdc", "imc") and calibrated is not None:
            use, perceived = calibrated
        elif method == "no-image" and blank is not None:
            use = blank
        answer = self.model.generate(use, vqa_prompt(question), max_new_tokens=self.max_new_tokens)
        return BenchRecord(
            item=item_id(row), dataset=row.dataset, closed=row.closed, noise=noise, severity=severity,
            method=method, question=question, answer=answer, reference=row.answer,
            correct=normalize_answer(answer) == normalize_answer(row.answer),
            recall=round(token_recall(answer, row.answer), 4), perceived=perceived, calls=calls,
        )

    def _append(self, record: BenchRecord) -> None:
        if self.cache is None:
            return
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cache, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")


def iter_groups(records: Sequence[BenchRecord]) -> Iterator[tuple[tuple[str, str, int, str], list[BenchRecord]]]:
    """Records grouped by (dataset, noise, severity, method), in a stable order."""
    groups: dict[tuple[str, str, int, str], list[BenchRecord]] = {}
    for r in records:
        groups.setdefault((r.dataset, r.noise, r.severity, r.method), []).append(r)
    yield from sorted(groups.items())

"""The benchmark's records: one answer (:class:`BenchRecord`), a run's cost (:class:`RunStats`), the
conditions, stable ids and seeds, and the grouping the reports use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from monai_imc.data import VQARow, lesion_region
from monai_imc.noise import check_severity, get_noise
from monai_imc.noise.local import LocalNoise, base_noise, is_local_noise

__all__ = [
    "BANK_METHODS",
    "METHODS",
    "BenchRecord",
    "RunStats",
    "conditions",
    "is_image_noise",
    "item_id",
    "iter_groups",
    "noise_seed",
    "noisy_image",
    "project_seconds",
]

METHODS: tuple[str, ...] = ("none", "pdc", "sms", "imc", "denoise", "repass", "spellcheck", "no-image")
#: The methods that need a prototype bank.
BANK_METHODS: tuple[str, ...] = ("pdc", "imc")


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
        confidence: the probability the model's decoder gave its answer, where the model reports it.
        calibrated: whether PDC changed the features (the gate flagged the image), for ``pdc`` / ``imc``.
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
    calibrated: bool | None = None

    @property
    def key(self) -> tuple[str, str, int, str]:
        """What identifies a record in the cache."""
        return (self.item, self.noise, self.severity, self.method)


@dataclass
class RunStats:
    """What a run cost: records produced and reused, answers generated, model calls, seconds.

    ``answers_generated / records_new`` is the share of records that needed their own generation;
    ``seconds / records_new`` the wall time per new record; ``cpu_seconds`` the process's CPU time over
    the same span (on a shared machine the wall time also counts other processes' turns).
    """

    records_new: int = 0
    records_cached: int = 0
    answers_generated: int = 0
    answers_reused: int = 0
    refinements: int = 0
    repass_calls: int = 0
    encodes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)

    def add_time(self, part: str, seconds: float) -> None:
        """Add ``seconds`` to the time spent on ``part`` (encode, refine, generate ...)."""
        self.timing[part] = self.timing.get(part, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, with the per-record cost."""
        out = asdict(self)
        out["timing"] = {k: round(v, 2) for k, v in self.timing.items()}
        out["seconds"] = round(self.seconds, 2)
        out["cpu_seconds"] = round(self.cpu_seconds, 2)
        out["seconds_per_new_record"] = (
            round(self.seconds / self.records_new, 5) if self.records_new else None
        )
        return out


def project_seconds(
    stats: RunStats, questions: int, images: int, full_questions: int, full_images: int
) -> float:
    """Wall seconds a run on ``full_questions`` questions about ``full_images`` images would take, from a
    smaller run's cost (same conditions and methods).

    Text work (SMS, repass) and answer generation grow with the questions; the rest (loading, noise,
    encoding, perceiving, filtering) with the images. Timings are the run's own wall times; scale by
    ``cpu_seconds / seconds`` for a machine the run has to itself.

    Raises:
        ValueError: the smaller run has no questions or images.
    """
    if questions <= 0 or images <= 0:
        raise ValueError(f"cannot project from a run of {questions} questions on {images} images")
    per_question = sum(stats.timing.get(k, 0.0) for k in ("sms", "repass", "generate"))
    rest = max(stats.seconds - per_question, 0.0)
    return per_question * full_questions / questions + rest * full_images / images


def conditions(noises: Sequence[str], severities: Sequence[int]) -> list[tuple[str, int]]:
    """``("clean", 0)`` and every ``(noise, severity)``.

    Raises:
        ValueError: an unknown noise or a severity outside 1..5.
    """
    for n in noises:
        get_noise(n)
    return [("clean", 0)] + [(n, check_severity(s)) for n in noises for s in severities]


def noise_seed(*parts: str) -> int:
    """A seed in [0, 2**31 - 1) from the parts (run seed, item, noise): the same condition, the same draw."""
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16) % (2**31 - 1)


def noisy_image(image: np.ndarray, row: VQARow, noise: str, severity: int, run_seed: str) -> np.ndarray:
    """A channel-first view of ``row``'s image under an image noise: global, or ``local-<noise>`` inside the
    image's lesion region (:func:`~monai_imc.data.lesion_region`; else a seeded random rectangle).

    The seed is the global noise's (run seed, image, noise), so a local noise is the global one's own draw
    inside the region.
    """
    seed = noise_seed(run_seed, row.image_key, base_noise(noise))
    if not is_local_noise(noise):
        return get_noise(noise).apply(image, severity=severity, seed=seed)
    lesion = lesion_region(row.image)
    region = None if lesion is None else lesion.mask
    return LocalNoise(base_noise(noise), severity, seed, region=region)(image)


def item_id(row: VQARow) -> str:
    """A stable id of a question: dataset, image and a hash of the question text."""
    return f"{row.image_key}#{hashlib.sha256(row.question.encode()).hexdigest()[:10]}"


def is_image_noise(noise: str) -> bool:
    """Whether ``noise`` is an image noise (``clean`` is none)."""
    return noise != "clean" and get_noise(noise).modality == "image"


def iter_groups(
    records: Sequence[BenchRecord],
) -> Iterator[tuple[tuple[str, str, int, str], list[BenchRecord]]]:
    """Records grouped by (dataset, noise, severity, method), in a stable order."""
    groups: dict[tuple[str, str, int, str], list[BenchRecord]] = {}
    for r in records:
        groups.setdefault((r.dataset, r.noise, r.severity, r.method), []).append(r)
    yield from sorted(groups.items())

"""The benchmark's records: one answer (:class:`BenchRecord`), a run's cost (:class:`RunStats`), the
conditions, stable ids and seeds, and the grouping the reports use."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from monai_imc.data import VQARow, lesion_region
from monai_imc.noise import check_severity, get_noise
from monai_imc.noise.local import LocalNoise, base_noise, is_local_noise

logger = logging.getLogger(__name__)

__all__ = [
    "BANK_METHODS",
    "METHODS",
    "METHOD_ALIASES",
    "RESTORE_METHODS",
    "TEXT_METHODS",
    "BenchRecord",
    "RunStats",
    "conditions",
    "fill_row_fields",
    "image_of",
    "is_image_noise",
    "item_id",
    "iter_groups",
    "noise_seed",
    "noisy_image",
    "project_seconds",
    "read_records",
    "resolve_methods",
    "row_fields",
    "write_record",
]

#: The methods: ``none`` the plain model; ``pdc`` perceive + calibrate the vision features (needs a prototype
#: bank); ``sms`` refine the question with the SMS agents; ``imc`` both; ``denoise`` a classic image filter
#: before the model (:mod:`monai_imc.bench.denoise`, chosen on the validation split); ``repass`` the same
#: model asked once to fix the question, its reply used as is; ``spellcheck`` a spell checker with SMS's
#: vocabulary and guards (:mod:`monai_imc.bench.spellcheck`); ``no-image`` the question with a black image,
#: the text-prior baseline (alias ``blank-image``, SURE-VQA's blank-image control); ``pdc-oracle`` PDC told
#: the true noise and severity instead of perceiving them (clean images and noises the bank lacks pass
#: unchanged): what a perfect perceiver would give; ``shuffled-image`` the question with another image of
#: its dataset and split (a seeded derangement, :func:`monai_imc.data.shuffled_image_keys`); ``restore``
#: perceive, then the classical correction of the perceived artifact on the view before the answer
#: (:mod:`monai_imc.restore`); ``imc+restore`` restore, then PDC and SMS.
METHODS: tuple[str, ...] = ("none", "pdc", "sms", "imc", "denoise", "repass", "spellcheck", "no-image", "pdc-oracle",
                            "shuffled-image", "restore", "imc+restore")
#: The methods that need a prototype bank.
BANK_METHODS: tuple[str, ...] = ("pdc", "imc", "pdc-oracle", "restore", "imc+restore")
#: The methods that restore the view the perceiver flagged (:mod:`monai_imc.restore`) before the answer.
RESTORE_METHODS: tuple[str, ...] = ("restore", "imc+restore")
#: The methods that change the question (the SMS columns: edited, guard refusals and violations, calls).
TEXT_METHODS: tuple[str, ...] = ("sms", "imc", "imc+restore", "repass", "spellcheck")
#: Other names of a method: ``blank-image`` (SURE-VQA's control) is ``no-image``, which shows a black image.
METHOD_ALIASES: dict[str, str] = {"blank-image": "no-image"}


def resolve_methods(methods: Sequence[str]) -> list[str]:
    """The methods by their names in :data:`METHODS` (aliases resolved, repeats dropped), in order.

    Raises:
        ValueError: an unknown method.
    """
    resolved = [METHOD_ALIASES.get(m, m) for m in methods]
    unknown = [m for m in resolved if m not in METHODS]
    if unknown:
        names = ", ".join([*METHODS, *(f"{a} (= {m})" for a, m in METHOD_ALIASES.items())])
        raise ValueError(f"unknown method(s) {unknown}; choose from {names}")
    return list(dict.fromkeys(resolved))


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
        verdict: the perceiver's verdict on the image (``clean``, ``artifact``, ``not assessable``) and
            ``perceived_severity`` its level of the artifact, where the method perceives (the perceiver report,
            :mod:`monai_imc.bench.perceiver_report`).
        confidence: the probability the model's decoder gave its answer, where the model reports it.
        calibrated: whether PDC changed the features (the gate flagged the image), for ``pdc`` / ``imc``;
            for ``pdc-oracle``, whether the calibration told the true noise changed them.
        edited: whether the method changed the question (:data:`TEXT_METHODS`; ``None`` for the others).
        guard_refusals: candidate edits a guard (:func:`monai_imc.guards.check_repair`) refused on the way
            (``sms`` / ``imc``: candidates of the refinement; ``spellcheck``: its correction; ``repass``,
            which applies no guard: 0).
        guard_violations: guards the question asked breaks against the question given (SMS and spell-check
            apply the guards, so 0; ``repass`` uses the reply as is).
        question_type: the dataset's question type (SLAKE ``content_type``, VQA-RAD ``question_type``).
        modality: the image's modality (SLAKE; ``""`` where the dataset has none).
        body_part: SLAKE's ``location``, VQA-RAD's organ (``image_organ``); ``""`` where unknown.

    Records written before a field existed load with its default (``None`` or ``""``).
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
    edited: bool | None = None
    guard_refusals: int | None = None
    guard_violations: int | None = None
    question_type: str = ""
    modality: str = ""
    body_part: str = ""
    verdict: str | None = None
    perceived_severity: int | None = None

    @property
    def complete(self) -> bool:
        """Whether the record has every column its method needs (a text method's record cached before the
        SMS columns existed has not: a resumed run answers it again)."""
        return self.method not in TEXT_METHODS or self.edited is not None

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


def row_fields(row: VQARow) -> dict[str, str]:
    """A record's breakdown fields from its data row: question type, modality and body part (SLAKE's
    location, else the coarse region, which is VQA-RAD's organ)."""
    return {"question_type": row.question_type, "modality": row.modality, "body_part": row.location or row.region}


def fill_row_fields(records: Sequence[BenchRecord], rows: Sequence[VQARow]) -> list[BenchRecord]:
    """``records`` with the breakdown fields filled from the data rows where a record lacks them (a cache
    written before the fields existed); records of no row in ``rows`` are kept as they are."""
    by_item = {item_id(r): r for r in rows}
    out = []
    for record in records:
        row = by_item.get(record.item)
        if row is not None and not (record.question_type or record.modality or record.body_part):
            record = replace(record, **row_fields(row))
        out.append(record)
    return out


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


def image_of(item: str) -> str:
    """The image key of an :func:`item_id`."""
    return item.split("#", 1)[0]


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


def read_records(path: str | Path) -> list[BenchRecord]:
    """The records of a JSONL cache, in file order (a later line for the same key replaces an earlier one).

    Lines written before a field existed load with its default; a line cut off when a run was stopped,
    or one that is not a record, is skipped with a warning naming the file and line (a resume redoes it).
    """
    path = Path(path)
    if not path.is_file():
        return []
    known = {f.name for f in fields(BenchRecord)}
    done: dict[tuple[str, str, int, str], BenchRecord] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            record = BenchRecord(**{k: v for k, v in data.items() if k in known})
        except (json.JSONDecodeError, TypeError, AttributeError):
            logger.warning("%s:%d: unreadable cache line skipped", path, number)
            continue
        done[record.key] = record
    return list(done.values())


def write_record(path: Path, record: BenchRecord) -> None:
    """Append ``record`` to the JSONL cache at ``path`` (one line, written at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(record)) + "\n")

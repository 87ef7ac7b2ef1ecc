"""The benchmark runner: every question x condition (clean, noise x severity) x method, seeded and resumable.

Conditions: ``clean`` and every noise of the registry at every severity; an image noise corrupts the
image (the question stays clean), a text noise corrupts the question (the image stays clean). The noise
seed of a condition depends only on the image or question and the noise, so two runs agree and a level
holds the lower levels' corruption (see ``docs/noise.md``).

Methods: :data:`~monai_imc.bench.records.METHODS` (what each does is described there); the text methods'
work is :class:`~monai_imc.bench.text_repair.TextMethods`.

No work is done twice (``memoize=True``, the default): an answer is a function of the features the model
sees and the prompt, so answers are kept by (features identity, prompt). The features identity names the
image, its image condition (text-noise conditions use the clean image) and what was done to them (``raw``,
``pdc``, ``oracle``, ``denoise``); calibrated features the gate passed unchanged are the raw ones, and every
black image is the same; ``shuffled-image`` shows the raw features of another image. So ``sms`` on an image
noise reuses ``none`` when SMS leaves the question unchanged, ``pdc`` on an image the gate passes reuses
``none``, ``no-image`` depends only on the question. Each (image, image condition) is encoded, perceived,
calibrated and filtered once; SMS refinements and repass replies are kept by question text across conditions.
The answers still missing are generated in batches
(:meth:`~monai_imc.models.hf.HFVisionLanguageModel.generate_batch` where the model has it, which also gives
each answer's probability; one by one otherwise), and so are the repass replies of an image's questions
(:meth:`~monai_imc.models.hf.HFVisionLanguageModel.chat_batch`). Each finished (question, condition, method)
is appended to a JSONL cache, so an interrupted run resumes where it stopped; ``cache_config.json`` beside it
refuses a resume with another model, seed or denoiser.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_imc.answers import exact_match, token_recall
from monai_imc.atomic import atomic_output
from monai_imc.bench.denoise import DENOISERS, DenoiseChoice, apply_denoiser, choose_on_rows
from monai_imc.bench.records import (
    BANK_METHODS,
    METHODS,
    RESTORE_METHODS,
    BenchRecord,
    RunStats,
    conditions,
    fill_row_fields,
    is_image_noise,
    item_id,
    iter_groups,
    noise_seed,
    noisy_image,
    project_seconds,
    read_records,
    resolve_methods,
    row_fields,
    write_record,
)
from monai_imc.bench.text_repair import TextMethods, TextRepair
from monai_imc.data import VQARow, load_view, shuffled_image_keys
from monai_imc.models.base import VisionFeatures, VisionLanguageModel
from monai_imc.noise import get_noise
from monai_imc.perceive import Perception
from monai_imc.pipeline import IMCPipeline, RestoredView
from monai_imc.prompts import vqa_prompt
from monai_imc.prototypes import PrototypeBank
from monai_imc.refine import SMSRefiner

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "BenchRecord", "BenchRunner", "RunStats", "conditions", "item_id", "iter_groups", "project_seconds"]

class _View:
    """One image under one image condition: its features, computed once, and what was done to them."""

    def __init__(self, runner: BenchRunner, row: VQARow, noise: str, severity: int, tag: str) -> None:
        self.runner, self.row, self.noise, self.severity, self.tag = runner, row, noise, severity, tag
        self._array: np.ndarray | None = None
        self._raw: VisionFeatures | None = None
        self._pdc: tuple[VisionFeatures, str, str] | None = None
        self._oracle: tuple[VisionFeatures, str] | None = None
        self._denoised: VisionFeatures | None = None
        self._restored: dict[bool, tuple[VisionFeatures, str, str, bool]] = {}
        self._restoration: tuple[str, RestoredView] | None = None
        #: what the perceiver saw in the view (set by :meth:`calibrated` and :meth:`restored`)
        self.perception: Perception | None = None

    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = self.runner.image(self.row, self.noise, self.severity)
        return self._array

    def raw(self) -> tuple[VisionFeatures, str]:
        if self._raw is None:
            self._raw = self.runner.encode(self.array())
        return self._raw, f"{self.tag}|raw"

    def calibrated(self) -> tuple[VisionFeatures, str, str]:
        """Calibrated features, their identity (the raw one when the gate passes the image), the perceived noise."""
        if self._pdc is None:
            raw, raw_key = self.raw()
            pipeline = self.runner.pipeline
            start = time.perf_counter()
            # the perceiver as the app runs it: the model's tokens and the physics measures of the view
            perception = pipeline.perceive(raw, views=[self.array()])[0]
            calibrated, records = pipeline.calibrate(raw, [perception], pdc=True)
            self.runner.stats.add_time("perceive+calibrate", time.perf_counter() - start)
            self.perception = perception
            if records[0].applied:
                self._pdc = (calibrated, f"{self.tag}|pdc", perception.noise or "clean")
            else:  # the gate passed the image: the raw features, the plain model's answers
                self._pdc = (raw, raw_key, perception.noise or "clean")
        return self._pdc

    def oracle(self) -> tuple[VisionFeatures, str]:
        """The features calibrated as if the perceiver had seen the true noise and severity (the raw ones for a
        clean image, a noise the bank lacks, or a strength of 0)."""
        if self._oracle is None:
            raw, raw_key = self.raw()
            bank = self.runner.pipeline.bank
            known = self.noise if bank is not None and self.noise in bank.noises else None
            told = Perception.given(known, self.severity if known else None)
            calibrated, records = self.runner.pipeline.calibrate(raw, [told], pdc=True)
            self._oracle = (calibrated, f"{self.tag}|oracle") if records[0].applied else (raw, raw_key)
        return self._oracle

    def denoised(self) -> tuple[VisionFeatures, str]:
        if self._denoised is None:
            if self.runner.denoiser is None:
                raise ValueError("method denoise needs a denoiser: call choose_denoiser or pass denoiser=")
            start = time.perf_counter()
            filtered = apply_denoiser(self.runner.denoiser, self.array())
            self.runner.stats.add_time("denoise", time.perf_counter() - start)
            self._denoised = self.runner.encode(filtered)
        return self._denoised, f"{self.tag}|denoise:{self.runner.denoiser}"


    def restored(self, pdc: bool) -> tuple[VisionFeatures, str, str, bool]:
        """Perceive (with the view), restore and re-encode (:meth:`IMCPipeline.restore_view`), then with ``pdc``
        calibrate: the features, their identity, the perceived noise and whether PDC changed them."""
        if pdc not in self._restored:
            raw, raw_key = self.raw()
            pipeline = self.runner.pipeline
            start = time.perf_counter()
            if self._restoration is None:
                perception = pipeline.perceive(raw, views=[self.array()])[0]
                self.perception = perception
                self._restoration = (perception.noise or "clean", pipeline.restore_view(self.array(), raw, perception))
            perceived, done = self._restoration
            features, key = (done.features, f"{self.tag}|restore") if done.restoration.applied else (raw, raw_key)
            calibrated = False
            if pdc:
                calibrated_features, records = pipeline.calibrate(features, [done.perception], pdc=True)
                if records[0].applied:
                    features, key, calibrated = calibrated_features, f"{key}|pdc", True
            self.runner.stats.add_time("restore", time.perf_counter() - start)
            self._restored[pdc] = (features, key, perceived, calibrated)
        return self._restored[pdc]


@dataclass
class _Job:
    """A record waiting for its answer."""

    row: VQARow
    noise: str
    severity: int
    method: str
    question: str
    calls: int
    perceived: str | None
    features: VisionFeatures
    answer_key: tuple[str, str]
    calibrated: bool | None = None
    repair: TextRepair | None = None
    perception: Perception | None = None


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
        denoiser: the filter of the ``denoise`` method (a key of :data:`~monai_imc.bench.denoise.DENOISERS`);
            ``None``: choose it with :meth:`choose_denoiser` before :meth:`run`.
        batch_size: answers generated per model call (1: one by one).
        text_model: the model of the ``repass`` call (default: ``model``; e.g. a
            :class:`~monai_imc.models.remote.RemoteModel` over a vLLM server).
        answer_suffix: appended to every question put to the model (e.g. " Answer with one word or a short
            phrase." for large chat models); the default (none) is what the reference model was trained on.
        memoize: reuse answers, features and refinements (see the module docstring); ``False`` computes
            every record on its own (for checking that memoization changes nothing).
        pipeline: the :class:`~monai_imc.pipeline.IMCPipeline` whose steps the runner calls (encode,
            perceive, calibrate, refine, answer); default: one over ``model``, ``bank`` and the refiner.
            A bundle's pipeline carries its calibration variant.
        image_pool: the questions whose images ``shuffled-image`` draws from (the whole split: each dataset's
            images deranged with :func:`~monai_imc.data.shuffled_image_keys` and ``seed``); default: the
            questions of :meth:`run`.

    Raises:
        ValueError: an unknown method or denoiser, ``pdc`` / ``imc`` without a bank, or a pipeline over
            another model or bank.
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
        denoiser: str | None = None,
        batch_size: int = 16,
        text_model: VisionLanguageModel | None = None,
        answer_suffix: str = "",
        memoize: bool = True,
        pipeline: IMCPipeline | None = None,
        image_pool: Sequence[VQARow] | None = None,
    ) -> None:
        methods = resolve_methods(methods)
        needing = [m for m in methods if m in BANK_METHODS]
        if bank is None and needing:
            raise ValueError(f"method(s) {', '.join(needing)} need a prototype bank of the model "
                             "(pass --bank DIR, or a bundle as --model)")
        if denoiser is not None and denoiser not in DENOISERS:
            raise ValueError(f"unknown denoiser {denoiser!r}; choose from {', '.join(DENOISERS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.bank = bank
        self.refiner = refiner or (pipeline.refiner if pipeline is not None else None) or SMSRefiner(model)
        self.methods = list(methods)
        self.seed = seed
        self.image_size = image_size
        self.max_new_tokens = max_new_tokens
        self.cache = Path(cache) if cache else None
        self.denoiser = denoiser
        self.batch_size = batch_size
        self.text_model = text_model or model
        self.answer_suffix = answer_suffix
        self.memoize = memoize
        # the method's steps (encode, perceive, calibrate, refine, answer) are the pipeline's
        self.pipeline = pipeline or IMCPipeline(model, bank, check_bank=False, refiner=self.refiner)
        if self.pipeline.model is not model or self.pipeline.bank is not bank:
            raise ValueError("the pipeline must hold the runner's model and bank")
        self.stats = RunStats()
        self.text = TextMethods(self.pipeline.refine, self.refiner, self.text_model, batch_size, memoize)
        self._questions: dict[tuple[str, str, int], str] = {}
        self._answers: dict[tuple[str, str], tuple[str, float | None]] = {}
        self._blank: VisionFeatures | None = None
        self.image_pool = list(image_pool) if image_pool is not None else None
        self._shuffled: dict[str, VQARow] = {}

    # ------------------------------------------------------------------ inputs
    def image(self, row: VQARow, noise: str, severity: int) -> np.ndarray:
        """The ``(H, W, C)`` uint8 view of ``row``'s image under the condition (text noises: the clean image)."""
        arr = load_view(row.image, self.image_size)
        if arr.ndim == 2:
            arr = arr[..., None]
        if not is_image_noise(noise):
            return arr
        noisy = noisy_image(np.ascontiguousarray(np.moveaxis(arr, -1, 0)), row, noise, severity, str(self.seed))
        return np.ascontiguousarray(np.moveaxis(noisy, 0, -1))

    def question(self, row: VQARow, noise: str, severity: int) -> str:
        """The question under the condition (image noises: the clean question)."""
        if noise == "clean" or get_noise(noise).modality == "image":
            return row.question
        key = (item_id(row), noise, severity)
        if key not in self._questions:
            self._questions[key] = get_noise(noise).apply(row.question, severity=severity,
                                                          seed=noise_seed(str(self.seed), item_id(row), noise))
        return self._questions[key]

    def encode(self, image: np.ndarray) -> VisionFeatures:
        """One vision pass (counted and timed)."""
        start = time.perf_counter()
        features = self.pipeline.encode([image])
        self.stats.add_time("encode", time.perf_counter() - start)
        self.stats.encodes += 1
        return features

    def blank(self) -> VisionFeatures:
        """Features of a black image (the ``no-image`` method)."""
        if self._blank is None or not self.memoize:
            self._blank = self.encode(np.zeros((self.image_size or 256, self.image_size or 256, 3), dtype=np.uint8))
        return self._blank

    # ------------------------------------------------------------------ the run
    def _done(self) -> dict[tuple[str, str, int, str], BenchRecord]:
        return {r.key: r for r in read_records(self.cache)} if self.cache is not None else {}

    def cache_identity(self) -> dict[str, Any]:
        """What the cached answers depend on besides the question (a resume must match it)."""
        return {"model": self.model.name,
                "bank": self.bank.bank_hash if self.bank is not None else None,
                "seed": self.seed, "image_size": self.image_size, "max_new_tokens": self.max_new_tokens,
                "answer_suffix": self.answer_suffix,
                "denoiser": self.denoiser if "denoise" in self.methods else None}

    def _check_cache(self) -> None:
        if self.cache is None:
            return
        path = self.cache.with_name("cache_config.json")
        identity = self.cache_identity()
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            changed = {k: (stored.get(k), v) for k, v in identity.items() if k in stored and stored[k] != v
                       and not (k == "denoiser" and (stored[k] is None or v is None))}
            if changed:
                raise ValueError(f"{self.cache}: cached answers were made with other settings {changed} "
                                 "(stored, now); use a new --out folder or delete the cache")
            identity = {k: v if v is not None else stored.get(k) for k, v in identity.items()}
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(identity, indent=2))

    def run(self, rows: Sequence[VQARow], noises: Sequence[str], severities: Sequence[int],
            progress: bool = False) -> list[BenchRecord]:
        """Answer every question under every condition with every method; returns all records (cached ones too).

        Records come image by image, then condition, question and method, whatever was cached.

        Raises:
            ValueError: the cache was made with other settings, or ``denoise`` runs without a denoiser.
        """
        if "denoise" in self.methods and self.denoiser is None:
            raise ValueError("method denoise needs a denoiser: call choose_denoiser(...) first or pass denoiser=")
        conds = conditions(noises, severities)
        if "shuffled-image" in self.methods:
            self._draw_shuffled(rows)
        self._check_cache()
        done = {k: r for k, r in self._done().items() if r.complete}
        start, cpu_start = time.perf_counter(), time.process_time()
        records: list[BenchRecord] = []
        by_image: dict[str, list[VQARow]] = {}
        for row in rows:
            by_image.setdefault(row.image_key, []).append(row)
        total = len(rows) * len(conds) * len(self.methods)
        bar = tqdm(total=total, desc="benchmark", disable=not progress, unit="answer", smoothing=0.05)
        for image_rows in by_image.values():
            slots: list[BenchRecord | _Job] = []
            views: dict[tuple[str, int, str], _View] = {}
            if self.memoize and "repass" in self.methods:
                self.text.repass_many([self.question(row, n, s) for n, s in conds for row in image_rows
                                       if (item_id(row), n, s, "repass") not in done], self.stats)
            for noise, severity in conds:
                for row in image_rows:
                    for method in self.methods:
                        key = (item_id(row), noise, severity, method)
                        if key in done:
                            slots.append(fill_row_fields([done[key]], [row])[0])
                            self.stats.records_cached += 1
                        else:
                            slots.append(self._job(row, noise, severity, method, views))
            self._answer([s for s in slots if isinstance(s, _Job)])
            for slot in slots:
                if isinstance(slot, _Job):
                    slot = self._record(slot)
                    self._append(slot)
                    self.stats.records_new += 1
                records.append(slot)
            bar.update(len(slots))
        bar.close()
        self.stats.seconds += time.perf_counter() - start
        self.stats.cpu_seconds += time.process_time() - cpu_start
        return records

    def _job(self, row: VQARow, noise: str, severity: int, method: str,
             views: dict[tuple[str, int, str], _View]) -> _Job:
        question = self.question(row, noise, severity)
        repair = self.text.repair(method, question, self.stats)
        question, calls = (repair.text, repair.calls) if repair is not None else (question, 0)
        image_noise, image_severity = (noise, severity) if is_image_noise(noise) else ("clean", 0)
        # Without memoization every record gets its own view (its own encode) and its own answer.
        view_key = (image_noise, image_severity, row.image_key if self.memoize else f"{item_id(row)}|{noise}|{method}")
        if view_key not in views:
            views[view_key] = _View(self, row, image_noise, image_severity,
                                    f"{row.image_key}|{image_noise}|{image_severity}")
        view = views[view_key]
        perceived, calibrated, perception = None, None, None
        if method == "no-image":
            features, fkey = self.blank(), "blank"
        elif method == "pdc-oracle":
            features, fkey = view.oracle()
            calibrated = fkey.endswith("|oracle")
        elif method == "shuffled-image":
            features, fkey = self._shuffled_view(row, image_noise, image_severity, views).raw()
        elif method in RESTORE_METHODS:
            features, fkey, perceived, calibrated = view.restored(pdc=method == "imc+restore")
            perception = view.perception
        elif method in BANK_METHODS:
            features, fkey, perceived = view.calibrated()
            calibrated, perception = fkey.endswith("|pdc"), view.perception
        elif method == "denoise":
            features, fkey = view.denoised()
        else:
            features, fkey = view.raw()
        prompt = vqa_prompt(question + self.answer_suffix)
        answer_key = (fkey, prompt) if self.memoize else (f"{fkey}|{noise}|{severity}|{method}|{item_id(row)}", prompt)
        return _Job(row, noise, severity, method, question, calls, perceived, features, answer_key, calibrated,
                    repair, perception)

    def _draw_shuffled(self, rows: Sequence[VQARow]) -> None:
        pool = self.image_pool if self.image_pool is not None else rows
        first = {r.image_key: r for r in reversed(pool)}
        self._shuffled = {k: first[other] for k, other in shuffled_image_keys(pool, self.seed).items()}
        missing = sorted({r.image_key for r in rows} - self._shuffled.keys())
        if missing:
            raise ValueError(f"shuffled-image: {len(missing)} image(s) not in the image pool, e.g. {missing[0]}")

    def _shuffled_view(self, row: VQARow, noise: str, severity: int, views: dict[tuple[str, int, str], _View]) -> _View:
        """Another image of the row's dataset and split under the same image condition (``shuffled-image``)."""
        other = self._shuffled[row.image_key]
        key = (noise, severity, f"shuffled|{other.image_key}" if self.memoize else f"shuffled|{item_id(row)}")
        if key not in views:
            views[key] = _View(self, other, noise, severity, f"{other.image_key}|{noise}|{severity}")
        return views[key]

    def _answer(self, jobs: Sequence[_Job]) -> None:
        """Generate the answers the memo lacks, in batches."""
        missing: dict[tuple[str, str], VisionFeatures] = {}
        for job in jobs:
            if job.answer_key in self._answers or job.answer_key in missing:
                self.stats.answers_reused += 1
            else:
                missing[job.answer_key] = job.features
        self.generate_missing(missing)

    def generate_missing(self, wanted: dict[tuple[str, str], VisionFeatures]) -> None:
        """Generate the answers of ``wanted`` (answer key ``(features identity, prompt)`` -> features) that the
        memo lacks, in batches; :meth:`answer_of` reads them."""
        items = [(k, f) for k, f in wanted.items() if k not in self._answers]
        start = time.perf_counter()
        for first in range(0, len(items), self.batch_size):
            chunk = items[first:first + self.batch_size]
            answers = self.pipeline.generate_many([f for _, f in chunk], [k[1] for k, _ in chunk],
                                                  max_new_tokens=self.max_new_tokens)
            for (key, _), answer in zip(chunk, answers):
                self._answers[key] = answer
        self.stats.add_time("generate", time.perf_counter() - start)
        self.stats.answers_generated += len(items)

    def answer_of(self, key: tuple[str, str]) -> str | None:
        """The memoised answer of an answer key (see :meth:`generate_missing`); ``None`` when not generated."""
        found = self._answers.get(key)
        return found[0] if found is not None else None

    def _record(self, job: _Job) -> BenchRecord:
        answer, confidence = self._answers[job.answer_key]
        return BenchRecord(
            item=item_id(job.row), dataset=job.row.dataset, closed=job.row.closed, noise=job.noise,
            severity=job.severity, method=job.method, question=job.question, answer=answer,
            reference=job.row.answer, correct=exact_match(answer, job.row.answer),
            recall=round(token_recall(answer, job.row.answer), 4), perceived=job.perceived, calls=job.calls,
            confidence=float(f"{confidence:.4g}") if confidence is not None else None, calibrated=job.calibrated,
            edited=job.repair.edited if job.repair else None,
            guard_refusals=job.repair.guard_refusals if job.repair else None,
            guard_violations=job.repair.guard_violations if job.repair else None,
            **row_fields(job.row),
            verdict=job.perception.verdict if job.perception is not None else None,
            perceived_severity=job.perception.severity if job.perception is not None else None,
        )

    def _append(self, record: BenchRecord) -> None:
        if self.cache is not None:
            write_record(self.cache, record)

    # ------------------------------------------------------------------ the denoise baseline's filter
    def choose_denoiser(self, rows: Sequence[VQARow], noises: Sequence[str], severities: Sequence[int],
                        progress: bool = False) -> DenoiseChoice:
        """Choose the ``denoise`` filter on validation ``rows`` (:func:`~monai_imc.bench.denoise.choose_on_rows`);
        the choice is stored in :attr:`denoiser`.

        Raises:
            ValueError: no closed question in ``rows``, or no image noise to choose for.
        """
        return choose_on_rows(self, rows, noises, severities, progress=progress)

"""The benchmark runner: every question x condition (clean, noise x severity) x method, seeded and resumable.

Conditions: ``clean`` and every noise of the registry at every severity; an image noise corrupts the
image (the question stays clean), a text noise corrupts the question (the image stays clean). The noise
seed of a condition depends only on the image or question and the noise, so two runs agree and a level
holds the lower levels' corruption (see ``docs/noise.md``).

Methods: ``none`` the plain model; ``pdc`` perceive + calibrate the vision features (needs a prototype bank);
``sms`` refine the question with the SMS agents; ``imc`` both; ``denoise`` a classic image filter before the
model (:mod:`monai_imc.bench.denoise`, chosen on the validation split by :meth:`BenchRunner.choose_denoiser`);
``repass`` the same model asked once to fix the question, its reply used as is; ``spellcheck`` a spell
checker with SMS's vocabulary and guards (:mod:`monai_imc.bench.spellcheck`); ``no-image`` the question
alone (a black image), the text-prior baseline.

No work is done twice (``memoize=True``, the default): an answer is a function of the features the model
sees and the prompt, so answers are kept by (features identity, prompt). The features identity names the
image, its image condition (text-noise conditions use the clean image) and what was done to them (``raw``,
``pdc``, ``denoise``); calibrated features the gate passed unchanged are the raw ones, and every black
image is the same. So ``sms`` on an image noise reuses ``none`` when SMS leaves the question unchanged,
``pdc`` on an image the gate passes reuses ``none``, ``no-image`` depends only on the question. Each
(image, image condition) is encoded, perceived, calibrated and filtered once; SMS refinements and repass
replies are kept by question text across conditions. The answers still missing are generated in batches
(:meth:`~monai_imc.models.hf.HFVisionLanguageModel.generate_batch` where the model has it, which also gives
each answer's probability; one by one otherwise), and so are the repass replies of an image's questions
(:meth:`~monai_imc.models.hf.HFVisionLanguageModel.chat_batch`).

Each finished (question, condition, method) is appended to a JSONL cache, so an interrupted run resumes
where it stopped; ``cache_config.json`` beside it refuses a resume with another model, seed or denoiser.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_imc.answers import normalize_answer, token_recall
from monai_imc.atomic import atomic_output
from monai_imc.bench.denoise import DENOISERS, RULE, DenoiseChoice, apply_denoiser, choose_denoiser
from monai_imc.bench.records import (
    BANK_METHODS,
    METHODS,
    BenchRecord,
    RunStats,
    conditions,
    is_image_noise,
    item_id,
    iter_groups,
    noise_seed,
    noisy_image,
    project_seconds,
)
from monai_imc.data import VQARow, load_view
from monai_imc.models.base import Capabilities, VisionFeatures, VisionLanguageModel
from monai_imc.noise import get_noise
from monai_imc.pipeline import IMCPipeline
from monai_imc.prompts import rewrite_messages, vqa_prompt
from monai_imc.prototypes import PrototypeBank
from monai_imc.refine import Refinement, SMSRefiner

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "BenchRecord", "BenchRunner", "RunStats", "conditions", "item_id", "iter_groups", "project_seconds"]

class _View:
    """One image under one image condition: its features, computed once, and what was done to them."""

    def __init__(self, runner: BenchRunner, row: VQARow, noise: str, severity: int, tag: str) -> None:
        self.runner, self.row, self.noise, self.severity, self.tag = runner, row, noise, severity, tag
        self._array: np.ndarray | None = None
        self._raw: VisionFeatures | None = None
        self._pdc: tuple[VisionFeatures, str, str] | None = None
        self._denoised: VisionFeatures | None = None

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
            perception = pipeline.perceive(raw)[0]
            calibrated, records = pipeline.calibrate(raw, [perception], pdc=True)
            self.runner.stats.add_time("perceive+calibrate", time.perf_counter() - start)
            if records[0].applied:
                self._pdc = (calibrated, f"{self.tag}|pdc", perception.noise or "clean")
            else:  # the gate passed the image: the raw features, the plain model's answers
                self._pdc = (raw, raw_key, perception.noise or "clean")
        return self._pdc

    def denoised(self) -> tuple[VisionFeatures, str]:
        if self._denoised is None:
            if self.runner.denoiser is None:
                raise ValueError("method denoise needs a denoiser: call choose_denoiser or pass denoiser=")
            start = time.perf_counter()
            filtered = apply_denoiser(self.runner.denoiser, self.array())
            self.runner.stats.add_time("denoise", time.perf_counter() - start)
            self._denoised = self.runner.encode(filtered)
        return self._denoised, f"{self.tag}|denoise:{self.runner.denoiser}"


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
    ) -> None:
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
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
        self.text_capabilities = Capabilities.of(self.text_model)
        # the method's steps (encode, perceive, calibrate, refine, answer) are the pipeline's
        self.pipeline = pipeline or IMCPipeline(model, bank, check_bank=False, refiner=self.refiner)
        if self.pipeline.model is not model or self.pipeline.bank is not bank:
            raise ValueError("the pipeline must hold the runner's model and bank")
        self.stats = RunStats()
        self._refined: dict[str, Refinement] = {}
        self._repassed: dict[str, str] = {}
        self._spellcheck: Any = None
        self._questions: dict[tuple[str, str, int], str] = {}
        self._answers: dict[tuple[str, str], tuple[str, float | None]] = {}
        self._blank: VisionFeatures | None = None

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

    def refine(self, question: str) -> Refinement:
        """The SMS refinement of a question (kept by text)."""
        if question not in self._refined or not self.memoize:
            start = time.perf_counter()
            self._refined[question] = self.pipeline.refine(question)
            self.stats.add_time("sms", time.perf_counter() - start)
            self.stats.refinements += 1
        return self._refined[question]

    def repass_many(self, questions: Sequence[str]) -> None:
        """Repass the questions not yet repassed, in batches where the text model has ``chat_batch``."""
        todo = [q for q in dict.fromkeys(questions) if q not in self._repassed]
        if not self.text_capabilities.batch_chat or self.batch_size == 1:
            for q in todo:
                self.repass(q)
            return
        for first in range(0, len(todo), self.batch_size):
            chunk = todo[first:first + self.batch_size]
            start = time.perf_counter()
            replies = self.text_model.chat_batch(  # type: ignore[attr-defined]
                [rewrite_messages(q) for q in chunk], max_new_tokens=48)
            self.stats.add_time("repass", time.perf_counter() - start)
            self.stats.repass_calls += len(chunk)
            for q, reply in zip(chunk, replies):
                self._repassed[q] = " ".join(reply.split()) or q

    def _spell_checker(self) -> Any:
        from monai_imc.bench.spellcheck import SpellCheckBaseline

        self._spellcheck = self._spellcheck or SpellCheckBaseline.like(self.refiner)
        return self._spellcheck

    def repass(self, question: str) -> str:
        """The one-call repair of a question by the same model (kept by text); the question if it says nothing."""
        if question not in self._repassed or not self.memoize:
            start = time.perf_counter()
            reply = " ".join(self.text_model.chat(rewrite_messages(question), max_new_tokens=48).split())
            self.stats.add_time("repass", time.perf_counter() - start)
            self.stats.repass_calls += 1
            self._repassed[question] = reply or question
        return self._repassed[question]

    # ------------------------------------------------------------------ the run
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
        self._check_cache()
        done = self._done()
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
                self.repass_many([self.question(row, n, s) for n, s in conds for row in image_rows
                                  if (item_id(row), n, s, "repass") not in done])
            for noise, severity in conds:
                for row in image_rows:
                    for method in self.methods:
                        key = (item_id(row), noise, severity, method)
                        if key in done:
                            slots.append(done[key])
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
        calls = 0
        if method in ("sms", "imc"):
            refinement = self.refine(question)
            question, calls = refinement.text, refinement.calls
        elif method == "repass":
            question, calls = self.repass(question), 1
        elif method == "spellcheck":
            question = self._spell_checker().correct(question)
        image_noise, image_severity = (noise, severity) if is_image_noise(noise) else ("clean", 0)
        # Without memoization every record gets its own view (its own encode) and its own answer.
        view_key = (image_noise, image_severity, row.image_key if self.memoize else f"{item_id(row)}|{noise}|{method}")
        if view_key not in views:
            views[view_key] = _View(self, row, image_noise, image_severity,
                                    f"{row.image_key}|{image_noise}|{image_severity}")
        view = views[view_key]
        perceived, calibrated = None, None
        if method == "no-image":
            features, fkey = self.blank(), "blank"
        elif method in BANK_METHODS:
            features, fkey, perceived = view.calibrated()
            calibrated = fkey.endswith("|pdc")
        elif method == "denoise":
            features, fkey = view.denoised()
        else:
            features, fkey = view.raw()
        prompt = vqa_prompt(question + self.answer_suffix)
        answer_key = (fkey, prompt) if self.memoize else (f"{fkey}|{noise}|{severity}|{method}|{item_id(row)}", prompt)
        return _Job(row, noise, severity, method, question, calls, perceived, features, answer_key, calibrated)

    def _answer(self, jobs: Sequence[_Job]) -> None:
        """Generate the answers the memo lacks, in batches."""
        missing: dict[tuple[str, str], VisionFeatures] = {}
        for job in jobs:
            if job.answer_key in self._answers or job.answer_key in missing:
                self.stats.answers_reused += 1
            else:
                missing[job.answer_key] = job.features
        items = list(missing.items())
        start = time.perf_counter()
        for first in range(0, len(items), self.batch_size):
            chunk = items[first:first + self.batch_size]
            answers = self.pipeline.generate_many([f for _, f in chunk], [k[1] for k, _ in chunk],
                                                  max_new_tokens=self.max_new_tokens)
            for (key, _), answer in zip(chunk, answers):
                self._answers[key] = answer
        self.stats.add_time("generate", time.perf_counter() - start)
        self.stats.answers_generated += len(items)

    def _record(self, job: _Job) -> BenchRecord:
        answer, confidence = self._answers[job.answer_key]
        return BenchRecord(
            item=item_id(job.row), dataset=job.row.dataset, closed=job.row.closed, noise=job.noise,
            severity=job.severity, method=job.method, question=job.question, answer=answer,
            reference=job.row.answer, correct=normalize_answer(answer) == normalize_answer(job.row.answer),
            recall=round(token_recall(answer, job.row.answer), 4), perceived=job.perceived, calls=job.calls,
            confidence=round(confidence, 5) if confidence is not None else None, calibrated=job.calibrated,
        )

    def _append(self, record: BenchRecord) -> None:
        if self.cache is None:
            return
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cache, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")

    # ------------------------------------------------------------------ the denoise baseline's filter
    def choose_denoiser(self, rows: Sequence[VQARow], noises: Sequence[str], severities: Sequence[int],
                        progress: bool = False) -> DenoiseChoice:
        """Choose the ``denoise`` filter on validation ``rows`` by the rule of :mod:`monai_imc.bench.denoise`.

        Only closed questions and image noises count; the choice is stored in :attr:`denoiser`.

        Raises:
            ValueError: no closed question in ``rows``, or no image noise to choose for.
        """
        closed = [r for r in rows if r.closed]
        image_noises = [n for n in noises if is_image_noise(n)]
        if not closed:
            raise ValueError("no closed validation question to choose a denoiser on")
        if not image_noises:
            raise ValueError("no image noise in the run: nothing to choose a denoiser for")
        candidates = ["unfiltered", *DENOISERS]
        conds = [("clean", 0)] + [(n, s) for n in image_noises for s in severities]
        hits: dict[tuple[str, str, int], list[float]] = {}
        jobs: list[tuple[str, str, int, VQARow, tuple[str, str]]] = []
        wanted: dict[tuple[str, str], VisionFeatures] = {}
        bar = tqdm(total=len(closed) * len(conds), desc="denoise choice", disable=not progress, unit="view")
        for row in closed:
            for noise, severity in conds:
                array = self.image(row, noise, severity)
                prompt = vqa_prompt(row.question + self.answer_suffix)
                for name in candidates:
                    key = (f"val|{row.image_key}|{noise}|{severity}|{name}", prompt)
                    if key not in self._answers and key not in wanted:
                        wanted[key] = self.encode(array if name == "unfiltered" else apply_denoiser(name, array))
                    jobs.append((name, noise, severity, row, key))
                bar.update()
            if len(wanted) >= 4 * self.batch_size:  # keep memory flat: answer as we go
                self._answer([_Job(row, "", 0, "", "", 0, None, f, k) for k, f in wanted.items()])
                wanted = {}
        self._answer([_Job(closed[0], "", 0, "", "", 0, None, f, k) for k, f in wanted.items()])
        bar.close()
        for name, noise, severity, row, key in jobs:
            correct = normalize_answer(self._answers[key][0]) == normalize_answer(row.answer)
            hits.setdefault((name, noise, severity), []).append(float(correct))
        scores = {}
        for name in candidates:
            clean = 100.0 * float(np.mean(hits[(name, "clean", 0)]))
            noisy = float(np.mean([100.0 * np.mean(hits[(name, n, s)]) for n, s in conds[1:]]))
            scores[name] = {"clean": round(clean, 2), "noisy": round(noisy, 2)}
        self.denoiser = choose_denoiser({n: scores[n] for n in DENOISERS}, scores["unfiltered"]["clean"])
        splits = tuple(sorted({f"{r.dataset}:{r.split}" for r in closed}))
        return DenoiseChoice(self.denoiser, RULE, scores, len(closed), splits)

"""One benchmark run end to end: datasets, model, denoise choice, answers, reports (what ``monai-imc bench`` does).

Example::

    result = run_benchmark(BenchSettings(model="bundles/monai_imc_vqa", datasets=["slake:../shared/data/slake"],
                                         methods=["none", "pdc"], limit=20, out="results/"))
    result.paths["results.md"]
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from monai_imc.atomic import atomic_output
from monai_imc.bench.breakdown import write_breakdowns, write_heatmap
from monai_imc.bench.datasets import stratified_subset
from monai_imc.bench.model_spec import LoadedModel, load_bench_model
from monai_imc.bench.records import RESTORE_METHODS, fill_row_fields, read_records, resolve_methods
from monai_imc.bench.report import write_report
from monai_imc.bench.runner import BenchRecord, BenchRunner, RunStats, project_seconds
from monai_imc.bench.settings import BenchSettings
from monai_imc.data import VQARow, load_dataset
from monai_imc.models.remote import RemoteModel
from monai_imc.noise import get_noise
from monai_imc.optional import require
from monai_imc.refine import SMSPrompts
from monai_imc.restore import require_restore

logger = logging.getLogger(__name__)

__all__ = ["BenchResult", "BenchSettings", "rebuild_report", "run_benchmark", "write_reports"]

#: The validation split (:mod:`monai_imc.data`: the images training held out; JSONL files have none).
VALIDATION_SPLIT = "validate"

#: The splits whose images a bank or a model may have been built from.
TRAINING_SPLITS = ("train", "validate")


@dataclass
class BenchResult:
    """What a run produced: every record, the config stored in results.json and the written files."""

    records: list[BenchRecord]
    config: dict[str, Any]
    paths: dict[str, Path]
    stats: RunStats = field(default_factory=RunStats)


def _rows(specs: Sequence[str], split: str, limit: int, seed: int) -> tuple[list[VQARow], list[VQARow]]:
    """The run's questions and all questions of the split (for the projection of a full run)."""
    rows: list[VQARow] = []
    every: list[VQARow] = []
    for spec in specs:
        part = load_dataset(spec, split)
        if not part:
            raise ValueError(f"{spec}: no questions in split {split!r}")
        rows.extend(stratified_subset(part, limit, seed))
        every.extend(part)
    return rows, every


def _validation_rows(specs: Sequence[str], per_dataset: int, seed: int) -> list[VQARow]:
    rows: list[VQARow] = []
    for spec in specs:
        if spec.partition(":")[0].lower() == "jsonl":
            continue
        closed = [r for r in load_dataset(spec, VALIDATION_SPLIT) if r.closed]
        rows.extend(stratified_subset(closed, per_dataset, seed))
    return rows


def _choose_denoiser(runner: BenchRunner, settings: BenchSettings, progress: bool) -> dict[str, Any]:
    """The denoise choice of the run: given, stored in the results folder by an earlier run, or made now."""
    image_noises = [n for n in settings.noises if get_noise(n).modality == "image"]
    wanted = {"noises": image_noises, "severities": list(settings.severities), "seed": settings.seed,
              "questions_per_dataset": settings.denoise_questions, "datasets": list(settings.datasets)}
    if settings.denoiser is not None:
        runner.denoiser = settings.denoiser
        return {"name": settings.denoiser, "rule": "given with --denoise-filter", "scores": {}, "questions": 0,
                "splits": []}
    path = Path(settings.out) / "denoise_choice.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("for") == wanted:
            runner.denoiser = stored["name"]
            return stored
    val = _validation_rows(settings.datasets, settings.denoise_questions, settings.seed)
    if not val:
        raise ValueError("method denoise needs a validation split to choose its filter, and no dataset of the run "
                         "has one (JSONL files have none): pass --denoise-filter NAME")
    start = time.perf_counter()
    choice = runner.choose_denoiser(val, image_noises, settings.severities, progress=progress)
    stored = {**asdict(choice), "splits": list(choice.splits), "seconds": round(time.perf_counter() - start, 1),
              "for": wanted}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(stored, indent=2))
    return stored


def build_runner(
    settings: BenchSettings, cache: bool = True, image_pool: Sequence[VQARow] | None = None
) -> tuple[BenchRunner, LoadedModel, str]:
    """The model, bank, refiner and :class:`BenchRunner` a run's settings describe (each Ray worker's too).

    Args:
        settings: the run's settings.
        cache: keep the records in ``settings.out``'s ``cache.jsonl`` (Ray workers: ``False``).
        image_pool: every row of the run's datasets and split (the shuffled-image control draws from it;
            default: read from the settings, so that a Ray worker draws the same other images).

    Returns:
        The runner, the loaded model and the name of the SMS prompts.

    Raises:
        ValueError: ``leave_out`` without a prototype bank; unknown SMS prompts.
    """
    if image_pool is None:
        image_pool = _rows(settings.datasets, settings.split, settings.limit, settings.seed)[1]
    loaded = load_bench_model(settings.model, settings.bank, settings.device, settings.dtype)
    if settings.leave_out:
        if loaded.bank is None:
            raise ValueError(f"--leave-out {settings.leave_out}: the model has no prototype bank to leave it out of")
        loaded.bank = loaded.bank.without(settings.leave_out)
    prompts_name = settings.sms_prompts or ("reference" if loaded.source == "bundle" else "instructed")
    if prompts_name not in ("reference", "instructed"):
        raise ValueError(f"unknown SMS prompts {prompts_name!r}; use reference or instructed")
    prompts = SMSPrompts.reference() if prompts_name == "reference" else SMSPrompts.instructed()
    text_model = RemoteModel(settings.text_server) if settings.text_server else loaded.model
    refiner = loaded.refiner(text_model, prompts)
    runner = BenchRunner(loaded.model, loaded.bank, refiner=refiner, methods=settings.methods, seed=settings.seed,
                         image_size=settings.image_size, max_new_tokens=settings.max_new_tokens,
                         cache=Path(settings.out) / "cache.jsonl" if cache else None,
                         batch_size=settings.batch_size, text_model=text_model,
                         answer_suffix=settings.answer_suffix, pipeline=loaded.pipeline(refiner),
                         image_pool=image_pool)
    return runner, loaded, prompts_name


def run_benchmark(settings: BenchSettings, progress: bool = False) -> BenchResult:
    """Run the benchmark the settings describe and write its reports into ``settings.out``.

    Raises:
        ValueError: unknown methods, noises or datasets; methods needing a bank without one; a cache made
            with other settings; ``denoise`` with no validation split and no ``denoiser``.
        FileNotFoundError: a dataset or bank is missing.
        OptionalImportError: matplotlib (the ``bench`` extra) is not installed; raised before any work.
    """
    settings.methods = resolve_methods(settings.methods)
    if not settings.noises:
        raise ValueError("no noises to run")
    require("matplotlib", extra="bench", purpose="the benchmark's plots")
    if set(settings.methods) & set(RESTORE_METHODS):
        require_restore("the restore methods")
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    rows, every = _rows(settings.datasets, settings.split, settings.limit, settings.seed)
    runner, loaded, prompts_name = build_runner(settings, image_pool=every)
    denoise = _choose_denoiser(runner, settings, progress) if "denoise" in settings.methods else None
    runner.stats = RunStats()  # the run's own cost, without the denoise choice
    if settings.ray:  # Ray workers answer what the cache lacks; the run below reads it back in order
        from monai_imc.bench.scale import answer_with_ray, merge_stats

        worker_stats = answer_with_ray(settings, runner, rows, build_runner, progress=progress)
    records = runner.run(rows, settings.noises, settings.severities, progress=progress)
    if settings.ray:
        runner.stats = merge_stats(worker_stats, runner.stats)
    config = {
        "command": settings.command, "model": settings.model, "model_source": loaded.source,
        "model_path": loaded.model_path, "bank": loaded.bank_path,
        "bank_hash": loaded.bank.bank_hash if loaded.bank is not None else None,
        "refiner": loaded.refiner_options, "sms_prompts": prompts_name, "text_server": settings.text_server,
        "answer_suffix": settings.answer_suffix, "datasets": list(settings.datasets), "split": settings.split,
        "noises": list(settings.noises), "severities": list(settings.severities), "methods": list(settings.methods),
        "limit": settings.limit, "seed": settings.seed, "image_size": settings.image_size,
        "leave_out": settings.leave_out,
        "questions": len(rows), "questions_per_dataset": _counts(rows), "denoise": denoise,
        "cost": runner.stats.as_dict(),
    }
    if settings.limit and runner.stats.records_new == len(records) and records:
        projected = project_seconds(runner.stats, len(rows), len({r.image_key for r in rows}), len(every),
                                    len({r.image_key for r in every}))
        projected += float((denoise or {}).get("seconds", 0.0))  # the denoise choice does not grow with the run
        share = runner.stats.cpu_seconds / runner.stats.seconds if runner.stats.seconds else 1.0
        config["projection"] = {
            "questions": len(every), "images": len({r.image_key for r in every}),
            "minutes": round(projected / 60, 1), "minutes_with_the_cpu_to_itself": round(share * projected / 60, 1),
            "rule": "sms, repass and generation time scale with questions, the rest with images "
                    "(monai_imc.bench.runner.project_seconds), plus the denoise choice",
        }
    paths = write_reports(records, settings.out, config)
    return BenchResult(records, config, paths, runner.stats)


def training_images(config: dict[str, Any]) -> set[str] | None:
    """The image keys of the training splits (``train``, ``validate``) of the run's datasets, which the
    perceiver report leaves out of a test run (a prototype bank may have been built from them); an empty
    set for a run on a training split itself, ``None`` where a dataset cannot be read (logged)."""
    if config.get("split", "test") in TRAINING_SPLITS:
        return set()
    keys: set[str] = set()
    for spec in config.get("datasets", []):
        for split in TRAINING_SPLITS:
            try:
                keys.update(r.image_key for r in load_dataset(spec, split))
            except (FileNotFoundError, ValueError) as err:
                logger.warning("%s: its %s images not known, the perceiver report counts every image: %s",
                               spec, split, err)
                return None
    return keys


def write_reports(records: Sequence[BenchRecord], out: str | Path, config: dict[str, Any]) -> dict[str, Path]:
    """Every report of a run from its records: :func:`~monai_imc.bench.report.write_report`'s files (the
    perceiver report without the images of :func:`training_images`), the breakdowns and the modality x
    noise heat map (:mod:`monai_imc.bench.breakdown`)."""
    paths = write_report(records, out, config, seen=training_images(config))
    present = {r.method for r in records}
    methods = [m for m in config.get("methods", []) if m in present] or sorted(present)
    paths.update(write_breakdowns(records, out, methods))
    paths.update(write_heatmap(records, out, methods))
    return paths


def rebuild_report(out: str | Path) -> BenchResult:
    """Regenerate every table and plot of a results folder from its ``cache.jsonl`` and ``results.json``,
    without answering again (``monai-imc bench --report-only``).

    Records cached before the breakdown fields existed get them from the datasets named in
    ``results.json`` (read again; nothing is answered).

    Raises:
        FileNotFoundError: ``out`` has no ``cache.jsonl``.
        ValueError: the cache holds no record.
        OptionalImportError: matplotlib (the ``bench`` extra) is missing.
    """
    require("matplotlib", extra="bench", purpose="the benchmark's plots")
    out = Path(out)
    cache = out / "cache.jsonl"
    if not cache.is_file():
        raise FileNotFoundError(f"{cache}: no cached run to report on")
    records = read_records(cache)
    if not records:
        raise ValueError(f"{cache}: no record in the cache")
    results = out / "results.json"
    config = json.loads(results.read_text(encoding="utf-8")).get("config", {}) if results.is_file() else {}
    if any(not (r.question_type or r.modality or r.body_part) for r in records):
        rows = []
        for spec in config.get("datasets", []):
            try:
                rows.extend(load_dataset(spec, config.get("split", "test")))
            except (FileNotFoundError, ValueError) as err:  # the report still comes, without those fields
                logger.warning("%s: breakdown fields not filled: %s", spec, err)
        records = fill_row_fields(records, rows)
    return BenchResult(records, config, write_reports(records, out, config))


def _counts(rows: Sequence[VQARow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.dataset] = counts.get(r.dataset, 0) + 1
    return counts

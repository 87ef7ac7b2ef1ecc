"""Scale-out with Ray: benchmark images answered, and prototype-bank images encoded, by Ray workers.

Each worker loads the model once. ``prototypes build --ray``: :func:`ray_bank_encoder` computes every
reference image's views and tokens on the workers (:func:`~monai_imc.bank_build.encode_variants`), and
:func:`~monai_imc.bank_build.build_bank` fits the bank from them in its usual order.

``monai-imc bench --ray`` (``BenchSettings.ray``) shards the images of a run that the cache lacks into
contiguous blocks; each Ray actor builds the run's runner (:func:`~monai_imc.bench.benchmark.build_runner`, passed in,
its own model) and answers its blocks with :meth:`BenchRunner.run`, the single-process code. The driver
appends the new records to ``cache.jsonl`` in image order, and the usual run then reads every record back
from the cache, in the usual order: the same records, resumable the same way, with one owner of the method.

A run's records do not depend on how its images are sharded: each image's work (views, perception,
calibration, refinement, answers batched per image) is done by one worker as the single process does it.
Answers the single process reuses across images (the black image of ``no-image``, repass replies of a
question asked about two images) are computed again by the worker that needs them, in that worker's
batch: with greedy decoding they are the same answer (checked by ``tests/bench/test_scale.py``).

Cluster: ``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others, then
``monai-imc bench --ray --ray-address auto ...`` on the head (``docs/scale.md``); the data, the model and
the bank must be at the same paths on every node.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai_imc.bench.records import BenchRecord, RunStats, conditions, item_id
from monai_imc.data import VQARow
from monai_imc.optional import require

if TYPE_CHECKING:
    from monai_imc.bench.runner import BenchRunner
    from monai_imc.bench.settings import BenchSettings

logger = logging.getLogger(__name__)

RunnerFactory = Callable[..., tuple[Any, Any, str]]
"""``(settings, cache=False) -> (runner, loaded model, prompts name)``: how a Ray worker builds its runner."""

__all__ = ["answer_with_ray", "image_blocks", "merge_stats", "ray_bank_encoder", "ray_workers", "start_ray"]


def image_blocks(rows: Sequence[VQARow], blocks: int) -> list[list[VQARow]]:
    """The rows split into at most ``blocks`` contiguous blocks of whole images, in the rows' order.

    Args:
        rows: the questions (an image's questions together after grouping, as the runner groups them).
        blocks: how many blocks at most.

    Returns:
        Non-empty blocks; each image's questions are in one block, in their order.
    """
    by_image: dict[str, list[VQARow]] = {}
    for row in rows:
        by_image.setdefault(row.image_key, []).append(row)
    images = list(by_image.values())
    count = max(1, min(blocks, len(images)))
    out: list[list[VQARow]] = []
    for index in range(count):
        first, last = index * len(images) // count, (index + 1) * len(images) // count
        block = [row for image in images[first:last] for row in image]
        if block:
            out.append(block)
    return out


def merge_stats(workers: RunStats, driver: RunStats) -> RunStats:
    """The cost of a Ray run: the workers' (their records are new) and the driver's (which read them back
    from the cache; they are not counted as cached). Seconds add up: the Ray phase, then the driver's run."""
    out = RunStats()
    for name in (
        "records_new",
        "records_cached",
        "answers_generated",
        "answers_reused",
        "refinements",
        "repass_calls",
        "encodes",
        "seconds",
        "cpu_seconds",
    ):
        setattr(out, name, getattr(workers, name) + getattr(driver, name))
    for part in (workers, driver):
        for key, seconds in part.timing.items():
            out.add_time(key, seconds)
    out.records_cached = max(0, driver.records_cached - workers.records_new)
    return out


def start_ray(address: str | None = None, num_cpus: int | None = None, attempts: int = 3) -> None:
    """Connect to Ray (``address``) or start a local instance, unless this process already is.

    Ray gives its raylet 30 s to start; on a busy machine that can pass, so the start is tried again
    (``attempts`` times in all).
    """
    import ray

    if ray.is_initialized():
        return
    for attempt in range(attempts):
        try:
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception:  # Ray raises a bare Exception when its node does not come up in time
            ray.shutdown()
            if attempt == attempts - 1:
                raise
            logger.warning("Ray did not start (attempt %d of %d); trying again", attempt + 1, attempts)


def ray_workers(requested: int = 0) -> int:
    """How many workers: ``requested``, else one per CPU of the Ray cluster (Ray must be initialised)."""
    import ray

    return requested if requested > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))


class _Worker:
    """One Ray actor: the run's runner with its own model, loaded once (no cache; the driver keeps it)."""

    def __init__(self, settings: BenchSettings, denoiser: str | None, build_runner: RunnerFactory) -> None:
        import torch

        torch.set_num_threads(settings.threads or 1)
        self.runner, _, _ = build_runner(settings, cache=False)
        self.runner.denoiser = denoiser
        self.settings = settings

    def answer(self, rows: list[VQARow]) -> tuple[list[dict[str, Any]], RunStats]:
        self.runner.stats = RunStats()
        records = self.runner.run(rows, self.settings.noises, self.settings.severities)
        return [dataclasses.asdict(r) for r in records], self.runner.stats


def answer_with_ray(
    settings: BenchSettings,
    runner: BenchRunner,
    rows: Sequence[VQARow],
    build_runner: RunnerFactory,
    progress: bool = False,
) -> RunStats:
    """Answer with Ray workers every record of ``rows`` the runner's cache lacks, and append them to it.

    Uses the Ray instance this process is connected to, else starts one (``ray.init``, or joins
    ``settings.ray_address`` when set; see ``docs/scale.md``).

    Args:
        settings: the run's settings (each worker builds its runner from them).
        runner: the driver's runner (its cache, its denoiser).
        rows: the run's questions.
        build_runner: how a worker builds its runner from the settings
            (:func:`monai_imc.bench.benchmark.build_runner`; Ray sends it by reference).
        progress: log each finished block.

    Returns:
        The workers' cost.

    Raises:
        OptionalImportError: Ray is not installed (the ``scale`` extra).
        ValueError: the runner has no cache, or its cache was made with other settings.
    """
    require("ray", extra="scale", purpose="monai-imc bench --ray")
    import ray

    if runner.cache is None:
        raise ValueError("--ray needs the run's cache (the results folder's cache.jsonl)")
    runner._check_cache()
    done = runner._done()
    methods = list(runner.methods)
    keys = [(n, s, m) for n, s in conditions(settings.noises, settings.severities) for m in methods]
    missing = [row for row in rows if any((item_id(row), n, s, m) not in done for n, s, m in keys)]
    images = {row.image_key for row in missing}
    todo = [row for row in rows if row.image_key in images]  # an image's questions stay together
    if not todo:
        return RunStats()
    start = time.perf_counter()
    start_ray(settings.ray_address or None)
    count = min(ray_workers(settings.ray_workers), len(images))
    package_root = str(Path(__file__).resolve().parents[2])
    actor = ray.remote(num_cpus=1)(_Worker).options(runtime_env={"env_vars": {"PYTHONPATH": package_root}})
    workers = [actor.remote(settings, runner.denoiser, build_runner) for _ in range(count)]
    blocks = image_blocks(todo, count * 2)  # two blocks per worker: a slow block does not hold the others
    pending = {}
    for index, block in enumerate(blocks):
        pending[workers[index % count].answer.remote(block)] = index
    results: dict[int, tuple[list[dict[str, Any]], RunStats]] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready[0])
        results[index] = ray.get(ready[0])
        if progress:
            logger.warning("ray: block %d of %d answered", len(results), len(blocks))
    stats = []
    for index in range(len(blocks)):  # appended in image order, each record once
        records, part = results[index]
        stats.append(part)
        for data in records:
            record = BenchRecord(**data)
            if record.key not in done:
                runner._append(record)
                done[record.key] = record
    for worker in workers:
        ray.kill(worker)
    total = RunStats()
    for part in stats:
        total = merge_stats(total, part)
    total.seconds = time.perf_counter() - start  # the Ray phase's wall time (the workers ran in parallel)
    return total


class _BankWorker:
    """One Ray actor of ``prototypes build --ray``: the model loaded once, reference images encoded."""

    def __init__(self, model: str, device: str | None, dtype: str | None, threads: int) -> None:
        import torch

        from monai_imc.models import load_model

        torch.set_num_threads(threads)
        self.model = load_model(model, device=device, dtype=dtype)

    def encode(self, items: list[tuple[int, Any]], *args: Any) -> dict[int, Any]:
        from monai_imc.bank_build import encode_variants

        return {index: encode_variants(self.model, array, index, *args) for index, array in items}


def ray_bank_encoder(
    model: str,
    device: str | None = None,
    dtype: str | None = None,
    workers: int = 0,
    threads: int = 1,
    address: str | None = None,
) -> Any:
    """An ``encode_many`` for :func:`~monai_imc.bank_build.build_bank` that encodes on Ray workers.

    Each worker loads ``model`` once and computes :func:`~monai_imc.bank_build.encode_variants` of a
    contiguous block of images; the bank is the one a single process builds (same views, same seeds, same
    batches; workers use ``threads`` torch threads, as the single process should for bit-equal tokens).

    Raises:
        OptionalImportError: Ray is not installed (the ``scale`` extra).
    """
    require("ray", extra="scale", purpose="monai-imc prototypes build --ray")
    import ray

    def encode_many(items: Sequence[tuple[int, Any]], *args: Any) -> dict[int, Any]:
        start_ray(address)
        count = max(1, min(ray_workers(workers), len(items)))
        package_root = str(Path(__file__).resolve().parents[2])
        actor = ray.remote(num_cpus=1)(_BankWorker).options(
            runtime_env={"env_vars": {"PYTHONPATH": package_root}}
        )
        pool = [actor.remote(model, device, dtype, threads) for _ in range(count)]
        blocks = [list(items[i * len(items) // count : (i + 1) * len(items) // count]) for i in range(count)]
        out: dict[int, Any] = {}
        for part in ray.get([w.encode.remote(b, *args) for w, b in zip(pool, blocks) if b]):
            out.update(part)
        for worker in pool:
            ray.kill(worker)
        return out

    return encode_many

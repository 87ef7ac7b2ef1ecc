"""Local-noise conditions in the benchmark: their own rows, views corrupted on the lesion, the perceiver
judged against the wrapped noise."""

from __future__ import annotations

from pathlib import Path

from monai_imc.bench.command import _bench_argv
from monai_imc.bench.report import summarize
from monai_imc.bench.runner import BenchRecord, BenchRunner, conditions
from monai_imc.cli import build_parser
from monai_imc.data import load_dataset
from monai_imc.noise.local import with_local


def test_local_conditions_are_named_apart() -> None:
    assert with_local(["blur", "typo", "local-motion"]) == ["blur", "typo", "local-motion", "local-blur"]
    assert conditions(with_local(["blur"]), [3]) == [("clean", 0), ("blur", 3), ("local-blur", 3)]
    args = build_parser().parse_args(
        ["bench", "--model", "m", "--dataset", "slake:x", "--local", "--out", "o"]
    )
    assert args.local and "--local" in _bench_argv(args)


def test_local_rows_in_the_report() -> None:
    def record(item: str, noise: str, perceived: str, correct: bool) -> BenchRecord:
        severity = 0 if noise == "clean" else 3
        return BenchRecord(
            item, "slake", True, noise, severity, "pdc", "q", "a", "a", correct, 1.0, perceived
        )

    made = [
        record("1", "clean", "clean", True),
        record("2", "clean", "clean", True),
        record("1", "local-blur", "blur", True),
        record("2", "local-blur", "clean", False),
    ]
    summary = {r["noise"]: r for r in summarize(made)}
    assert set(summary) == {"clean", "local-blur"}, "the local condition is its own row"
    assert summary["local-blur"]["perceiver_right"] == 50.0, "right when the wrapped noise is named"


def test_bench_views_are_corrupted_on_the_lesion(bundled, data_dir: Path) -> None:
    rows = [
        r
        for r in load_dataset(f"slake:{data_dir / 'slake'}", "test")
        if r.image_key == "slake/xmlab102/source.jpg"
    ]
    pipeline = bundled.pipeline  # its refiner and perceiver, built once for the session
    runner = BenchRunner(pipeline.model, pipeline.bank, methods=["none"], image_size=128, pipeline=pipeline)
    clean = runner.image(rows[0], "clean", 0)
    noisy = runner.image(rows[0], "local-blur", 3)
    assert noisy.shape == clean.shape
    changed = (noisy != clean).any(axis=-1)
    assert changed.any() and changed.mean() < 0.01, "only the lesion box (0.1 % of the image) is corrupted"
    assert (runner.image(rows[0], "blur", 3) != clean).any(axis=-1).mean() > 0.2

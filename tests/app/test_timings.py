"""The app's run report carries per-stage timings, per series and per run (from the real graph run)."""

from __future__ import annotations

import json

from app_helpers import AppRun

from monai_imc.deploy.report import REPORT_NAME


def test_the_run_report_times_every_stage(sample_run: AppRun) -> None:
    timings = json.loads((sample_run.output / REPORT_NAME).read_text())["timings"]
    for stage in ("read", "views", "encode", "perceive", "calibrate", "refine", "answer", "sr"):
        assert timings["stages"].get(stage, 0.0) > 0.0, f"{stage} was timed"
    written = {o.name for o in sample_run.report.of("written")}
    assert written and written <= set(timings["series"]), "every written series has its timings"
    for uid in written:
        assert {"encode", "answer", "sr"} <= set(timings["series"][uid])
    per_series = sum(sum(v.values()) for v in timings["series"].values())
    assert per_series <= sum(timings["stages"].values()) + 1e-6
    assert sum(timings["stages"].values()) <= timings["wall_seconds"]
    assert timings["model_seconds"] > 0 and timings["app_overhead_ratio"] is not None

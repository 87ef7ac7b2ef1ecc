"""bench/reference_seeds.py: the seeds table of the reference model (mean, spread, margin over the twin)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "reference_seeds.py"


def _run(folder: Path, seed: int, closed: float, open_: float) -> Path:
    folder.mkdir(parents=True)
    metrics = {
        "seed": seed,
        "slake_test": {"closed_acc": closed, "open_acc": open_, "by_group": {"Modality": {"acc": 90.0}}},
        "train_minutes": 30.0 + seed,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_table_gives_means_spreads_and_the_margin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = runpy.run_path(str(SCRIPT))
    model = [_run(tmp_path / f"m{s}", s, c, o) for s, c, o in ((0, 60.0, 70.0), (1, 64.0, 72.0))]
    twin = [_run(tmp_path / f"t{s}", s, c, o) for s, c, o in ((0, 58.0, 40.0), (1, 58.0, 44.0))]
    png = tmp_path / "seeds.png"
    assert tool["main"](["--model", *map(str, model), "--twin", *map(str, twin), "--plot", str(png)]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    closed = rows["SLAKE test closed accuracy"]
    assert "62.00 +- 2.83" in closed and "58.00 +- 0.00" in closed and "+4.00 +- 2.83" in closed
    assert "+29.00 +- 3.16" in rows["SLAKE test open exact match"]  # 71 - 42, sd hypot(1.41, 2.83)
    assert "| - | - |" in rows["VQA-RAD test closed accuracy"], "absent metrics are shown as absent"
    assert png.stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        tool["main"](["--model", str(tmp_path / "missing")])

"""bench/leave_one_out_table.py: each left-out noise's table row and the largest cost of each defence."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "leave_one_out_table.py"


def _run(folder: Path, noise: str, values: dict[str, tuple[float, float]], perceived: str) -> None:
    folder.mkdir(parents=True)
    rows = [{"dataset": ds, "noise": noise, "severity": 3, "method": m, "closed_acc": c, "open_recall": o}
            for ds in ("slake", "vqa_rad") for m, (c, o) in values.items()]
    (folder / "results.json").write_text(json.dumps({"rows": rows}))
    recs = [{"dataset": ds, "noise": noise, "method": m, "perceived": perceived}
            for ds in ("slake", "vqa_rad") for m in values if m != "none"]
    (folder / "cache.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_costs_per_defence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = str(tmp_path / "loo-")
    _run(tmp_path / "loo-blur", "blur", {"none": (60, 50), "pdc": (61, 48.6), "imc+restore": (59.5, 51)}, "gibbs")
    _run(tmp_path / "loo-spike", "spike", {"none": (50, 40), "pdc": (49, 40), "imc+restore": (52, 41)}, "clean")
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), prefix, "--methods", "pdc,imc+restore"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    assert "| closed none | closed pdc | closed imc+restore | open recall none |" in out
    assert "| blur | slake | 60.0 | 61.0 | 59.5 | 50.0 | 48.6 | 51.0 | gibbs 100% |" in out
    assert "largest closed cost of pdc against none: 1.0 points (spike, slake); largest open-recall cost: 1.4 (blur, slake)" in out
    assert "largest closed cost of imc+restore against none: 0.5 points (blur, slake)" in out

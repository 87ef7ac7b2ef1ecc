"""bench/choose_restore.py: the corrections the bundle switches on, chosen on a validation run."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "choose_restore.py"


def _row(dataset: str, noise: str, severity: int, method: str, closed: float, recall: float,
         closed_n: int = 10, open_n: int = 10) -> dict:
    return {"dataset": dataset, "noise": noise, "severity": severity, "method": method, "closed_acc": closed,
            "open_recall": recall, "closed_n": closed_n, "open_n": open_n}


def test_a_correction_is_chosen_where_its_pooled_gain_is_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        # spike: +10 closed on 10 questions, -2 recall on 10 -> +4 pooled: chosen
        _row("a", "spike", 3, "pdc", 50, 50), _row("a", "spike", 3, "imc+restore", 60, 48),
        # blur: +2 closed on 5 questions, -2 recall on 20 questions -> (10 - 40) / 25 = -1.2: not chosen
        _row("a", "blur", 3, "pdc", 50, 50, 5, 20), _row("a", "blur", 3, "imc+restore", 52, 48, 5, 20),
        # a noise without a correction, and a dataset without open questions
        _row("a", "motion", 3, "pdc", 50, 50), _row("a", "motion", 3, "imc+restore", 90, 90),
        _row("b", "spike", 5, "pdc", 40, None, 10, 0), _row("b", "spike", 5, "imc+restore", 30, None, 10, 0),
    ]
    module = runpy.run_path(str(SCRIPT))
    gains = module["pooled_gains"](rows)
    assert set(gains) == {"spike", "blur"}
    # spike pooled over both datasets: (+100 - 20 - 100) / 30 questions
    assert gains["spike"] == {"gain": pytest.approx((100 - 20 - 100) / 30, abs=0.01), "questions": 30}
    assert gains["blur"]["gain"] == pytest.approx(-1.2)
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "results.json").write_text(json.dumps({"config": {"split": "validate"}, "rows": rows[:4]}))
    assert module["main"]([str(tmp_path / "val")]) == 0
    assert 'chosen corrections: ["spike"]' in capsys.readouterr().out
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "results.json").write_text(json.dumps({"config": {"split": "test"}, "rows": rows}))
    assert module["main"]([str(tmp_path / "test")]) == 2, "never chosen on test"

"""The benchmark: dataset readers on the real data, the runner on a tiny LLaVA, resume, reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_imc.bench.datasets import load_dataset, read_jsonl
from monai_imc.bench.report import summarize, write_report
from monai_imc.bench.runner import BenchRunner, conditions
from monai_imc.models import load_model
from monai_imc.models.tiny import build_tiny_checkpoint
from monai_imc.prototypes import build_bank


def test_readers_give_the_official_test_splits(data_dir: Path) -> None:
    slake = load_dataset(f"slake:{data_dir / 'slake'}", "test")
    rad = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "test")
    assert (len(slake), sum(r.closed for r in slake)) == (1061, 416)
    assert (len(rad), sum(r.closed for r in rad), len({r.image_key for r in rad})) == (451, 272, 203)
    assert all(r.image.is_file() for r in slake[:20] + rad[:20])
    with pytest.raises(ValueError, match="unknown dataset spec"):
        load_dataset("pathvqa:/x")
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_dataset(f"slake:{data_dir / 'slake'}", "dev")


def test_jsonl_reader_names_a_bad_line(tmp_path: Path) -> None:
    (tmp_path / "site.jsonl").write_text('{"image": "a.png", "question": "Is it?", "answer": "yes", "answer_type": "CLOSED"}\n{"image": 1}\n')
    with pytest.raises(ValueError, match=r"site\.jsonl:2"):
        read_jsonl(tmp_path / "site.jsonl")


def test_conditions_and_bad_methods() -> None:
    assert conditions(["blur", "typo"], [1, 3]) == [("clean", 0), ("blur", 1), ("blur", 3), ("typo", 1), ("typo", 3)]
    with pytest.raises(ValueError, match="unknown noise"):
        conditions(["fog"], [1])


def test_runner_resumes_and_reports(tmp_path: Path, data_dir: Path) -> None:
    model = load_model(str(build_tiny_checkpoint("llava", tmp_path / "m", seed=0)), device="cpu")
    rows = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "test")[:3]
    train = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "train")[:40:8]
    images = [np.asarray(Image.open(r.image).convert("RGB").resize((64, 64))) for r in train]
    bank = build_bank(model, images, ["blur"], [3], seed=0)
    with pytest.raises(ValueError, match="need a prototype bank"):
        BenchRunner(model, None, methods=["pdc"])
    with pytest.raises(ValueError, match="unknown method"):
        BenchRunner(model, bank, methods=["magic"])
    cache = tmp_path / "out" / "cache.jsonl"
    methods = ["none", "pdc", "sms", "no-image"]
    runner = BenchRunner(model, bank, methods=methods, image_size=64, max_new_tokens=3, cache=cache)
    first = runner.run(rows, ["blur", "typo"], [3])
    assert len(first) == 3 * 3 * 4 and len(cache.read_text().splitlines()) == 36
    again = BenchRunner(model, bank, methods=methods, image_size=64, max_new_tokens=3, cache=cache).run(
        rows, ["blur", "typo"], [3])
    assert [r.key for r in again] == [r.key for r in first] and [r.answer for r in again] == [r.answer for r in first]
    assert len(cache.read_text().splitlines()) == 36, "a resumed run answers nothing twice"
    typo = [r for r in first if r.noise == "typo" and r.method == "none"]
    assert all(r.question != row.question for r, row in zip(typo, rows)), "the text noise reached the question"
    assert all(r.perceived is not None for r in first if r.method == "pdc")

    rows_summary = summarize(first)
    assert {(r["noise"], r["method"]) for r in rows_summary} >= {("clean", "none"), ("blur", "pdc"), ("typo", "sms")}
    paths = write_report(first, tmp_path / "out", {"command": "test"})
    assert json.loads(paths["results.json"].read_text())["rows"]
    assert "| blur | 3 |" in paths["results.md"].read_text()
    assert paths["accuracy_vs_severity.png"].stat().st_size > 1000 and paths["methods.png"].is_file()


def test_bench_command(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monai_imc.cli import main

    model_dir = build_tiny_checkpoint("llava", tmp_path / "m", seed=0)
    code = main(["bench", "--model", str(model_dir), "--dataset", f"slake:{data_dir / 'slake'}", "--limit", "2",
                 "--noises", "jpeg", "--severities", "1,5", "--methods", "none,repass", "--out", str(tmp_path / "r")])
    assert code == 0
    out = capsys.readouterr().out
    assert "## slake" in out and "| jpeg | 5 |" in out
    config = json.loads((tmp_path / "r" / "results.json").read_text())["config"]
    assert config["methods"] == ["none", "repass"] and config["questions"] == 2

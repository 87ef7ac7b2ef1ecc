"""The benchmark on the bundled reference model and the real SLAKE / VQA-RAD data, on tiny subsets."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

from monai_imc.bench.datasets import stratified_subset
from monai_imc.bench.denoise import DENOISERS, apply_denoiser, choose_denoiser
from monai_imc.bench.records import TEXT_METHODS
from monai_imc.bench.report import markdown, summarize
from monai_imc.bench.runner import METHODS, BenchRecord, BenchRunner, RunStats, conditions, project_seconds
from monai_imc.data import load_dataset, read_jsonl, shuffled_image_keys
from monai_imc.prompts import vqa_prompt

BUNDLE = REPO / "bundles" / "monai_imc_vqa"
NOISES = ["blur", "gibbs", "typo"]


@pytest.fixture(scope="module")
def reference(bundled):
    """The bundled reference model and its prototype bank (loaded once per session)."""
    return bundled.pipeline.model, bundled.pipeline.bank


@pytest.fixture(scope="module")
def tiny_rows(data_dir: Path):
    """Three SLAKE questions on one image (shared features) and two VQA-RAD questions."""
    slake = load_dataset(f"slake:{data_dir / 'slake'}", "test")
    first = [r for r in slake if r.image_key == slake[0].image_key][:3]
    return first + stratified_subset(load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "test"), 2, seed=0)


def test_readers_give_the_official_splits(data_dir: Path) -> None:
    slake = load_dataset(f"slake:{data_dir / 'slake'}", "test")
    rad = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "test")
    assert (len(slake), sum(r.closed for r in slake)) == (1061, 416)
    assert (len(rad), sum(r.closed for r in rad), len({r.image_key for r in rad})) == (451, 272, 203)
    assert all(r.image.is_file() for r in slake[:20] + rad[:20])
    val = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "validate")
    train = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "train")
    assert val and not {r.image_key for r in val} & {r.image_key for r in train}, "validate is a held-out image slice"
    with pytest.raises(ValueError, match="unknown dataset spec"):
        load_dataset("pathvqa:/x")
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_dataset(f"slake:{data_dir / 'slake'}", "dev")


def test_stratified_subset_is_seeded_and_keeps_the_mix(data_dir: Path) -> None:
    rows = load_dataset(f"slake:{data_dir / 'slake'}", "test")
    a, b = stratified_subset(rows, 40, seed=0), stratified_subset(rows, 40, seed=0)
    assert a == b and len(a) == 40 and a != stratified_subset(rows, 40, seed=1)
    assert sum(r.closed for r in a) == round(40 * 416 / 1061)
    assert [rows.index(r) for r in a] == sorted(rows.index(r) for r in a), "original order kept"
    assert stratified_subset(rows, 0) == rows


def test_jsonl_reader(tmp_path: Path, data_dir: Path) -> None:
    src = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "test")[0]
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(src.image.read_bytes())
    lines = [{"image": "imgs/a.jpg", "question": " Is it normal? ", "answer": "yes", "answer_type": "CLOSED"},
             {"image": "imgs/a.jpg", "question": "What organ?", "answer": "liver"}]
    (tmp_path / "site.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows = load_dataset(f"jsonl:{tmp_path / 'site.jsonl'}")
    assert [(r.question, r.closed, r.dataset) for r in rows] == [("Is it normal?", True, "site"), ("What organ?", False, "site")]
    assert rows[0].image == tmp_path / "imgs" / "a.jpg" and rows[0].image.is_file()
    (tmp_path / "bad.jsonl").write_text(json.dumps(lines[0]) + '\n{"image": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_conditions_and_refusals(reference) -> None:
    model, bank = reference
    assert conditions(["blur", "typo"], [1, 3]) == [("clean", 0), ("blur", 1), ("blur", 3), ("typo", 1), ("typo", 3)]
    with pytest.raises(ValueError, match="unknown noise"):
        conditions(["fog"], [1])
    with pytest.raises(ValueError, match="pdc, imc need a prototype bank"):
        BenchRunner(model, None, methods=["none", "pdc", "imc"])
    with pytest.raises(ValueError, match="unknown method"):
        BenchRunner(model, bank, methods=["magic"])
    with pytest.raises(ValueError, match="unknown denoiser"):
        BenchRunner(model, bank, methods=["denoise"], denoiser="wiener")
    with pytest.raises(ValueError, match="needs a denoiser"):
        BenchRunner(model, bank, methods=["denoise"]).run([], ["blur"], [3])


def test_denoisers_filter_noise_and_the_rule() -> None:
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (64, 1))
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    grey = np.repeat(noisy[..., None], 3, axis=-1)
    for name in DENOISERS:
        out = apply_denoiser(name, grey)
        assert out.shape == grey.shape and out.dtype == np.uint8
        assert np.abs(out[..., 0].astype(float) - clean).mean() < np.abs(noisy.astype(float) - clean).mean()
        assert (out[..., 0] == out[..., 2]).all()
    scores = {"median3": {"clean": 60.0, "noisy": 40.0}, "gaussian1": {"clean": 55.0, "noisy": 50.0},
              "diffusion": {"clean": 59.0, "noisy": 45.0}, "median5": {"clean": 50.0, "noisy": 55.0}}
    assert choose_denoiser(scores, clean_reference=60.0) == "diffusion", "gaussian1/median5 cost clean > 2 points"
    assert choose_denoiser(scores, clean_reference=80.0) == "median3", "none allowed: the one costing least"


def _records(runner: BenchRunner, rows, noises=NOISES) -> list[BenchRecord]:
    return runner.run(rows, noises, [3])


@pytest.fixture(scope="module")
def slake_test(data_dir: Path):
    """SLAKE's test split: the images shuffled-image draws from."""
    return load_dataset(f"slake:{data_dir / 'slake'}", "test")


def test_memoization_changes_no_answer(reference, tiny_rows, slake_test) -> None:
    model, bank = reference
    kwargs = {"methods": METHODS, "denoiser": "median3", "batch_size": 1, "image_pool": slake_test}
    rows = tiny_rows[:2]  # two questions on one image
    fast = BenchRunner(model, bank, **kwargs)
    slow = BenchRunner(model, bank, memoize=False, **kwargs)
    a, b = _records(fast, rows, ["blur", "typo"]), _records(slow, rows, ["blur", "typo"])
    assert len(a) == len(rows) * 3 * len(METHODS)
    assert [asdict(r) for r in a] == [asdict(r) for r in b]
    assert fast.stats.answers_generated < 0.7 * slow.stats.answers_generated, (fast.stats, slow.stats)
    assert slow.stats.answers_generated == len(b) and slow.stats.answers_reused == 0
    assert fast.stats.encodes < slow.stats.encodes
    # batching gives the same answers as one by one
    batched = _records(BenchRunner(model, bank, **{**kwargs, "batch_size": 16}), rows, ["blur", "typo"])
    assert [r.answer for r in batched] == [r.answer for r in a]
    assert all(r.confidence is not None and 0 < r.confidence <= 1 for r in a)
    typo = [r for r in a if r.noise == "typo" and r.method == "none"]
    assert all(r.question != row.question for r, row in zip(typo, rows)), "the text noise reached the question"
    perceiving = ("pdc", "imc", "restore", "imc+restore")
    assert all(r.perceived is not None for r in a if r.method in perceiving)
    assert all(r.perceived is None for r in a if r.method not in perceiving)
    # the verdict and level the report reads are the perceiver's own, on the view the method answered on
    assert all(r.verdict in ("clean", "artifact", "not assessable") for r in a if r.method in perceiving)
    assert all(r.verdict is None and r.perceived_severity is None for r in a if r.method not in perceiving)
    assert all((r.perceived_severity is not None) == (r.verdict == "artifact") for r in a if r.method in perceiving)
    assert all(r.perceived == ("clean" if r.verdict != "artifact" else r.perceived) for r in a if r.method in perceiving)
    assert all(r.calibrated is None for r in a if r.method not in (*perceiving, "pdc-oracle"))
    by = {r.key: r for r in a}
    for r in a:  # an image the gate passes (or the oracle leaves alone) reuses the plain answer
        if r.method in ("pdc", "pdc-oracle") and not r.calibrated:
            assert r.answer == by[(r.item, r.noise, r.severity, "none")].answer
    oracle = {r.noise: r.calibrated for r in a if r.method == "pdc-oracle"}
    assert oracle == {"clean": False, "typo": False, "blur": bank.strength("blur", 3) > 0}, "told the true noise"
    # the shuffled control shows another SLAKE test image: the answers of that image's own view
    other = shuffled_image_keys(slake_test, seed=0)[rows[0].image_key]
    assert other != rows[0].image_key and other.startswith("slake/")
    other_row = next(r for r in slake_test if r.image_key == other)
    shown = fast.pipeline.generate_many([fast.encode(fast.image(other_row, "clean", 0))],
                                        [vqa_prompt(rows[0].question)], max_new_tokens=fast.max_new_tokens)
    assert by[(a[0].item, "clean", 0, "shuffled-image")].answer == shown[0][0]
    # SMS columns on the text methods only; breakdown fields from the data rows
    assert all((r.edited is None) == (r.method not in TEXT_METHODS) for r in a)
    assert all(r.guard_violations == 0 for r in a if r.method in ("sms", "imc", "spellcheck"))
    for r in a:
        if r.method in TEXT_METHODS:
            assert r.edited == (r.question != by[(r.item, r.noise, r.severity, "none")].question)
    assert {(r.question_type, r.modality, r.body_part) for r in a} == {
        (row.question_type, row.modality, row.location) for row in rows}


def test_resume_and_two_runs_agree(reference, tiny_rows, tmp_path: Path) -> None:
    model, bank = reference
    cache = tmp_path / "out" / "cache.jsonl"
    methods = ["none", "pdc", "sms", "repass", "no-image"]
    rows = [*tiny_rows[:2], tiny_rows[3]]
    first = _records(BenchRunner(model, bank, methods=methods, cache=cache), rows, ["blur", "typo"])
    lines = cache.read_text().splitlines()
    assert len(lines) == len(first) == len(rows) * 3 * len(methods)
    cache.write_text("\n".join(lines[: len(lines) // 2]) + '\n{"item": "cut off')  # an interrupted run
    resumed_runner = BenchRunner(model, bank, methods=methods, cache=cache)
    resumed = _records(resumed_runner, rows, ["blur", "typo"])
    assert resumed_runner.stats.records_cached == len(lines) // 2
    assert resumed_runner.stats.records_new == len(lines) - len(lines) // 2
    assert [asdict(r) for r in resumed] == [asdict(r) for r in first]
    fresh = _records(BenchRunner(model, bank, methods=methods), rows, ["blur", "typo"])
    assert [asdict(r) for r in fresh] == [asdict(r) for r in first], "seeded: two runs agree"
    other_seed = _records(BenchRunner(model, bank, methods=["none"], seed=1), rows, ["typo"])
    assert [r.question for r in other_seed if r.noise == "typo"] != [r.question for r in first
                                                                    if r.noise == "typo" and r.method == "none"]
    with pytest.raises(ValueError, match="other settings"):
        BenchRunner(model, bank, methods=methods, cache=cache, seed=7).run(rows, ["blur", "typo"], [3])


def test_summary_metrics(reference, tiny_rows, tmp_path: Path) -> None:
    model, bank = reference
    records = _records(BenchRunner(model, bank, methods=["none", "pdc", "no-image"]), tiny_rows)
    rows = {(r["dataset"], r["noise"], r["method"]): r for r in summarize(records)}
    for (dataset, noise, method), row in rows.items():
        group = [r for r in records if (r.dataset, r.noise, r.method) == (dataset, noise, method)]
        closed = [r for r in group if r.closed]
        if closed:
            assert row["closed_acc"] == pytest.approx(100 * sum(r.correct for r in closed) / len(closed), abs=0.01)
            conf = 100 * sum(r.confidence for r in closed) / len(closed)
            assert row["calibration_gap"] == pytest.approx(conf - row["closed_acc"], abs=0.02)
        if method == "pdc":
            expected = noise if noise in ("blur", "gibbs") else "clean"
            assert row["perceiver_right"] == pytest.approx(
                100 * sum(r.perceived == expected for r in group) / len(group), abs=0.01)
        else:
            assert row["perceiver_right"] is None
    # recovery against hand-made records: clean 100 %, noisy 0 %, the method half way back
    def rec(noise: str, method: str, correct: bool, item: str) -> BenchRecord:
        return BenchRecord(item, "d", True, noise, 0 if noise == "clean" else 3, method, "q", "a", "a", correct, 1.0)
    made = [rec("clean", "none", True, "1"), rec("clean", "none", True, "2"), rec("blur", "none", False, "1"),
            rec("blur", "none", False, "2"), rec("blur", "pdc", True, "1"), rec("blur", "pdc", False, "2"),
            rec("clean", "pdc", True, "1"), rec("clean", "pdc", True, "2")]
    by = {(r["noise"], r["method"]): r for r in summarize(made)}
    assert by[("blur", "pdc")]["recovery"] == 0.5 and by[("blur", "none")]["relative_drop"] == 1.0
    assert by[("blur", "pdc")]["relative_drop"] == 0.5 and by[("clean", "pdc")]["recovery"] is None


def test_bench_command_end_to_end(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monai_imc.cli import main

    out = tmp_path / "r"
    argv = ["bench", "--model", str(BUNDLE), "--dataset", f"slake:{data_dir / 'slake'}",
            "--dataset", f"vqa-rad:{data_dir / 'vqa_rad'}", "--limit", "2", "--noises", "blur,typo",
            "--severities", "3", "--methods", ",".join(METHODS),
            "--denoise-questions", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "## slake" in printed and "## vqa_rad" in printed and "| blur | 3 |" in printed
    result = json.loads((out / "results.json").read_text())
    config = result["config"]
    assert config["methods"] == list(METHODS) and config["questions"] == 4 and config["model_source"] == "bundle"
    assert config["denoise"]["name"] in DENOISERS and set(config["denoise"]["scores"]) == {"unfiltered", *DENOISERS}
    assert config["denoise"]["splits"] == ["slake:validate", "vqa_rad:validate"]
    assert config["cost"]["records_new"] == 4 * 3 * len(METHODS)
    assert config["projection"]["questions"] == 1061 + 451 and config["projection"]["minutes"] > 0
    assert {r["method"] for r in result["rows"]} == set(METHODS)
    assert (out / "results.csv").read_text().startswith("dataset,noise,severity,method,closed_acc")
    md = (out / "results.md").read_text()
    assert "Denoise filter:" in md and "| noise | sev | " + " | ".join(METHODS) + " |" in md
    for png in ("accuracy_vs_severity.png", "accuracy_vs_severity_slake.png", "accuracy_vs_severity_vqa_rad.png",
                "methods.png", "perceiver_confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    perceiver = json.loads((out / "perceiver.json").read_text())
    assert perceiver["method"] == "pdc" and {"slake", "all"} <= set(perceiver["datasets"])
    images = {json.loads(x)["item"].split("#")[0] for x in (out / "cache.jsonl").read_text().splitlines()}
    train = {r.image_key for spec in (f"slake:{data_dir / 'slake'}", f"vqa-rad:{data_dir / 'vqa_rad'}")
             for split in ("train", "validate") for r in load_dataset(spec, split)}
    assert perceiver["heldout"] and sum(perceiver["left_out"].values()) == len(images & train)
    assert perceiver["datasets"].get("all", {}).get("images", 0) == len(images - train) and "## The perceiver" in md
    before = (out / "cache.jsonl").read_text()
    assert main(argv) == 0, "a second run resumes"
    assert (out / "cache.jsonl").read_text() == before, "nothing answered twice"
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]
    assert "### Text methods: recovery, false edits" in md and "### Expected calibration error" in md
    for png in ("heatmap_modality_noise.png", "reliability_none.png", "reliability_shuffled-image.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a cache written before the breakdown fields: --report-only fills them from the datasets, answers nothing
    old = [{k: v for k, v in json.loads(x).items() if k not in ("question_type", "modality", "body_part")}
           for x in before.splitlines()]
    (out / "cache.jsonl").write_text("".join(json.dumps(x) + "\n" for x in old))
    (out / "breakdowns.csv").unlink()
    assert main(["bench", "--report-only", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["rows"] == result["rows"]
    with open(out / "breakdowns.csv", newline="") as fh:
        cut = list(csv.DictReader(fh))
    types = {(r["dataset"], r["group"]) for r in cut if r["breakdown"] == "question type"}
    assert {d for d, _ in types} == {"slake", "vqa_rad"} and all(g != "?" for _, g in types)
    assert {r["method"] for r in cut} == set(METHODS)
    assert "## slake" in (out / "breakdowns.md").read_text()


def test_bench_command_refusals(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monai_imc.cli import main

    model_dir = str(BUNDLE / "models" / "reference-vlm")
    base = ["bench", "--model", model_dir, "--limit", "1", "--noises", "blur", "--out", str(tmp_path / "r")]
    assert main([*base, "--dataset", f"slake:{data_dir / 'slake'}", "--methods", "none,pdc"]) == 2
    assert "need a prototype bank" in capsys.readouterr().err
    site = tmp_path / "site.jsonl"
    src = load_dataset(f"slake:{data_dir / 'slake'}", "test")[0]
    site.write_text(json.dumps({"image": str(src.image), "question": src.question, "answer": src.answer,
                                "answer_type": "CLOSED"}) + "\n")
    assert main([*base, "--dataset", f"jsonl:{site}", "--methods", "denoise"]) == 2
    assert "--denoise-filter" in capsys.readouterr().err
    assert main([*base, "--dataset", f"jsonl:{site}", "--methods", "none,denoise", "--denoise-filter", "median3"]) == 0
    assert "## site" in capsys.readouterr().out


def test_projection_scales_text_work_with_questions_and_the_rest_with_images() -> None:
    stats = RunStats(seconds=100.0, timing={"sms": 30.0, "repass": 10.0, "generate": 40.0, "encode": 15.0})
    # 80 s of per-question work x 10, 20 s of per-image work x 4
    assert project_seconds(stats, questions=80, images=50, full_questions=800, full_images=200) == 880.0
    with pytest.raises(ValueError, match="0 questions"):
        project_seconds(stats, 0, 1, 10, 10)


def test_the_report_says_how_the_denoise_filter_was_picked() -> None:
    chosen = {"name": "median3", "rule": "best mean closed accuracy", "questions": 86,
              "splits": ["slake:validate", "vqa_rad:validate"]}
    assert ("Denoise filter: `median3` (best mean closed accuracy; chosen on 86 closed validation questions of "
            "slake:validate, vqa_rad:validate).") in markdown([], {"denoise": chosen})
    given = {"name": "gaussian1", "rule": "given with --denoise-filter", "scores": {}, "questions": 0, "splits": []}
    header = markdown([], {"denoise": given})
    assert "Denoise filter: `gaussian1` (given with --denoise-filter)." in header and "chosen on" not in header

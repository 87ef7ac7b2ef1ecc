"""The benchmark's report parts on hand-made records: ECE, the SMS table, breakdowns, old caches, controls."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from monai_imc.bench.breakdown import breakdown_rows, modality_noise_grid, write_breakdowns, write_heatmap
from monai_imc.bench.calibration_error import (
    expected_calibration_error,
    reliability_bins,
    write_reliability_diagrams,
)
from monai_imc.bench.records import BenchRecord, fill_row_fields, item_id, read_records, resolve_methods
from monai_imc.bench.report import summarize
from monai_imc.bench.sms_table import sms_markdown, sms_rows
from monai_imc.bench.text_repair import guard_refusals, repair_of_refinement, repair_of_reply
from monai_imc.data import VQARow, shuffled_image_keys
from monai_imc.perceive import Perception
from monai_imc.refine import AgentStep, Refinement

PNG = b"\x89PNG\r\n\x1a\n"


def test_ece_on_a_hand_made_example() -> None:
    # bin 14 ([14/15, 1]): 4 answers at 0.95, 3 right -> |0.75 - 0.95| = 0.2; bin 8 ([8/15, 9/15)): 2 at 0.55,
    # 1 right -> |0.5 - 0.55| = 0.05. ECE = (4 * 0.2 + 2 * 0.05) / 6 = 0.15
    conf = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55]
    hit = [True, True, True, False, True, False]
    assert expected_calibration_error(conf, hit) == pytest.approx(0.15)
    assert [(b.count, b.accuracy) for b in reliability_bins(conf, hit)] == [(2, 0.5), (4, 0.75)]
    # one bin over everything: |4/6 - mean confidence|
    assert expected_calibration_error(conf, hit, bins=1) == pytest.approx(abs(4 / 6 - sum(conf) / 6))
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0, "1.0 falls in the last bin"
    assert expected_calibration_error([], []) is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2], [True])
    with pytest.raises(ValueError, match="2 confidences for 1"):
        expected_calibration_error([0.1, 0.2], [True])


def _rec(noise: str, method: str, correct: bool, item: str, **kw) -> BenchRecord:
    fields = {"confidence": 0.9, "question_type": "Organ", "modality": "CT", "body_part": "Lung"} | kw
    return BenchRecord(
        item, "d", True, noise, 0 if noise == "clean" else 3, method, "q", "a", "a", correct, 1.0, **fields
    )


def _run() -> list[BenchRecord]:
    """Two questions: clean right, typo wrong for the plain model; SMS wins one back, edits one clean question."""
    out = []
    for i in ("1", "2"):
        out += [
            _rec("clean", "none", True, i),
            _rec("typo", "none", False, i),
            _rec("blur", "none", i == "1", i),
        ]
        out += [
            _rec("clean", "sms", True, i, edited=i == "1", guard_refusals=0, guard_violations=0, calls=1),
            _rec(
                "typo",
                "sms",
                i == "1",
                i,
                edited=True,
                guard_refusals=1,
                guard_violations=0,
                calls=3 + int(i),
            ),
            _rec("clean", "repass", True, i, edited=True, guard_refusals=0, guard_violations=1, calls=1),
            _rec("typo", "repass", False, i, edited=True, guard_refusals=0, guard_violations=0, calls=1),
        ]
    return out


def test_sms_table_recovery_false_edits_guards_calls() -> None:
    records = _run()
    rows = {(r["noise"], r["method"]): r for r in sms_rows(records, summarize(records))}
    assert rows[("typo", "sms")]["recovery_pct"] == 50.0 and rows[("typo", "repass")]["recovery_pct"] == 0.0
    assert rows[("clean", "sms")]["edited_pct"] == 50.0, "one clean question edited: a false edit"
    assert (
        rows[("clean", "repass")]["edited_pct"] == 100.0
        and rows[("clean", "repass")]["guard_violations"] == 2
    )
    assert (rows[("typo", "sms")]["median_calls"], rows[("typo", "sms")]["max_calls"]) == (4.5, 5)
    assert rows[("typo", "sms")]["guard_refusals"] == 2
    assert rows[("all text noises", "sms")]["recovery_pct"] == 50.0
    assert ("blur", "sms") not in rows and not any(m == "none" for _, m in rows)
    md = "\n".join(sms_markdown(list(rows.values()), "d", ["none", "sms", "repass"]))
    assert "| clean (false edits) |  | sms | 100.0 |  | 50.0 | 0 | 0 | 1.0 | 1 |" in md
    assert "| typo | 3 | sms | 50.0 | 50.0 | 100.0 | 2 | 0 | 4.5 | 5 |" in md


def test_breakdowns_cut_every_metric_by_group(tmp_path: Path) -> None:
    records = _run() + [
        replace(
            r, item=r.item + "x", question_type="Abnormality", modality="MRI", body_part="Brain", correct=True
        )
        for r in _run()
    ]
    rows = breakdown_rows(records, "question type")
    by = {(r["group"], r["noise"], r["method"]): r for r in rows}
    assert by[("Organ", "typo", "sms")]["recovery"] == 0.5, "recovery within the group"
    assert by[("Abnormality", "typo", "none")]["closed_acc"] == 100.0
    assert {r["group"] for r in breakdown_rows(records, "modality x body part")} == {
        "CT x Lung",
        "MRI x Brain",
    }
    names, noises, grids = modality_noise_grid(records, ["none", "sms", "no-image"])
    assert (
        names == ["d CT", "d MRI"] and noises == ["blur", "typo"] and set(grids) == {"loss", "recovery: sms"}
    )
    assert grids["loss"] == [[50.0, 100.0], [0.0, 0.0]]
    assert grids["recovery: sms"][0][1] == 50.0
    paths = write_breakdowns(records, tmp_path, ["none", "sms", "repass"])
    md = paths["breakdowns.md"].read_text()
    assert "### Per question type" in md and "#### question type = Abnormality" in md
    assert "| Organ | 2 | 0 | 100 / 50 / 0 |" in md, "clean / image noises / text noises"
    assert paths["breakdowns.csv"].read_text().startswith("breakdown,group,dataset,noise")
    assert (
        write_heatmap(records, tmp_path, ["none", "sms"])["heatmap_modality_noise.png"].read_bytes()[:8]
        == PNG
    )
    diagrams = write_reliability_diagrams(records, tmp_path, ["none", "sms"])
    assert set(diagrams) == {"reliability_none.png", "reliability_sms.png"}
    assert summarize(records)[0]["ece"] is not None


def test_old_cache_lines_load_and_get_their_fields(tmp_path: Path) -> None:
    row = VQARow(
        Path("x.jpg"),
        "Is it a CT?",
        "yes",
        True,
        "slake",
        "test",
        "slake/x.jpg",
        "CT",
        "Lung",
        "chest",
        "Modality",
    )
    new = BenchRecord(item_id(row), "slake", True, "clean", 0, "none", row.question, "yes", "yes", True, 1.0)
    old_line = {
        k: v
        for k, v in asdict(new).items()
        if k not in ("edited", "guard_refusals", "guard_violations", "question_type", "modality", "body_part")
    }
    cache = tmp_path / "cache.jsonl"
    cache.write_text(
        json.dumps(old_line)
        + "\n"
        + json.dumps({**old_line, "future_field": 1, "method": "pdc"})
        + '\n{"item": "cut'
    )
    loaded = read_records(cache)
    assert [r.method for r in loaded] == ["none", "pdc"] and loaded[0] == new
    assert new.complete and replace(new, method="sms", edited=False).complete
    assert not replace(new, method="sms").complete, "a text method's old record is answered again on resume"
    filled = fill_row_fields(loaded, [row])
    assert (filled[0].question_type, filled[0].modality, filled[0].body_part) == ("Modality", "CT", "Lung")


def test_shuffled_images_stay_in_their_dataset_and_blank_image_is_no_image() -> None:
    rows = [
        VQARow(Path(f"{d}{i}.jpg"), "q", "a", True, d, "test", f"{d}/{i}.jpg")
        for d in ("a", "b")
        for i in range(5)
    ]
    mapping = shuffled_image_keys(rows, seed=3)
    assert all(k != v and k.split("/")[0] == v.split("/")[0] for k, v in mapping.items())
    assert sorted(mapping.values()) == sorted(mapping) and mapping == shuffled_image_keys(rows, seed=3)
    assert mapping != shuffled_image_keys(rows, seed=4)
    with pytest.raises(ValueError, match="two images"):
        shuffled_image_keys(rows[:1])
    assert resolve_methods(["none", "blank-image", "no-image"]) == ["none", "no-image"]
    with pytest.raises(ValueError, match="unknown method"):
        resolve_methods(["magic"])


def test_text_repairs_count_guards() -> None:
    refused = AgentStep(
        "specialist:typo", "Is there no efusion?", "Is there efusion?", "rejected: negation changed"
    )
    margin = AgentStep(
        "specialist:typo", "Is there no efusion?", "Is there no effusion?", "rejected: gain 0.1 < 1"
    )
    done = Refinement(
        "Is there no efusion?",
        "Is there no effusion?",
        True,
        "typo",
        (),
        {},
        4,
        1,
        (refused, margin),
        ("negation changed", "gain"),
    )
    assert guard_refusals(done) == 1, "a margin rejection is no guard refusal"
    repair = repair_of_refinement("Is there no efusion?", done)
    assert (repair.edited, repair.calls, repair.guard_refusals, repair.guard_violations) == (True, 4, 1, 0)
    reply = repair_of_reply("Is there no efusion?", "Is there an effusion?")
    assert (reply.edited, reply.calls, reply.guard_violations) == (True, 1, 1), "repass applies no guard"
    assert repair_of_reply("Is it a CT?", "Is it a CT?").edited is False


def test_a_given_perception() -> None:
    told = Perception.given("blur", 3)
    assert (told.noise, told.severity, told.flagged, told.confidence, told.verdict) == (
        "blur",
        3,
        True,
        1.0,
        "artifact",
    )
    assert not Perception.given("clean").flagged and Perception.given(None).noise is None
    with pytest.raises(ValueError, match="severity"):
        Perception.given("blur")


def test_perceiver_report_on_hand_made_verdicts(tmp_path: Path) -> None:
    from monai_imc.bench.perceiver_report import perceiver_markdown, perceiver_summary, write_perceiver_report

    def record(image: str, noise: str, severity: int, verdict: str, perceived: str | None = None,
               level: int | None = None, question: str = "q", dataset: str = "slake") -> BenchRecord:
        return BenchRecord(f"{dataset}/{image}#{question}", dataset, True, noise, severity, "pdc", "q", "a", "a",
                           True, 1.0, perceived or "clean", verdict=verdict, perceived_severity=level)

    made = [
        record("a", "clean", 0, "clean"),
        record("a", "clean", 0, "clean", question="q2"),  # a second question on the same view: one verdict
        record("a", "typo", 3, "clean"),  # a text noise leaves the image clean
        record("b", "clean", 0, "artifact", "blur", 2),  # a false alarm
        record("c", "clean", 0, "not assessable"),
        record("a", "blur", 3, "artifact", "blur", 4),  # right, level within 1
        record("b", "blur", 3, "artifact", "blur", 1),  # right, level 2 off
        record("c", "blur", 3, "not assessable"),
        record("a", "local-blur", 5, "artifact", "gibbs", 5),  # a local variant counts as its noise: wrong
        record("b", "blur", 5, "clean"),
        record("a", "blur", 1, "clean"),  # severity 1: in its cell, not in the >= 3 mean or the matrix
        record("z", "blur", 3, "artifact", "blur", 3, dataset="vqa-rad"),
    ]
    summary = perceiver_summary(made, ["none", "pdc"])
    assert summary is not None and summary["method"] == "pdc"
    slake = summary["datasets"]["slake"]
    assert slake["images"] == 3 and slake["clean_images"] == 3
    assert slake["type_right"]["blur"] == {1: 0.0, 3: pytest.approx(66.67), 5: 0.0}
    assert slake["type_accuracy_severity_3_plus"] == pytest.approx((66.67 + 0.0) / 2, abs=0.01)
    assert slake["severity_within_1"] == 50.0  # a (4 for 3) yes, b (1 for 3) no
    assert slake["clean_false_alarm"] == pytest.approx(33.33) and slake["clean_not_assessable"] == pytest.approx(33.33)
    assert slake["noisy_not_assessable"] == 20.0  # c at 3, of a, b, c at 3 and a, b at 5 (local-blur is blur)
    assert slake["confusion"]["blur"] == {"clean": 1, "blur": 2, "gibbs": 1, "not assessable": 1}
    assert slake["confusion"]["clean"] == {"clean": 1, "blur": 1, "gibbs": 0, "not assessable": 1}
    pooled = summary["datasets"]["all"]
    assert pooled["images"] == 4 and pooled["type_right"]["blur"][3] == 75.0
    lines = perceiver_markdown(summary)
    assert any(line.startswith("| slake | 3 | 33.3 | 50.0 | 33.3 | 33.3 | 20.0 |") for line in lines), lines
    paths = write_perceiver_report(summary, tmp_path)
    assert json.loads(paths["perceiver.json"].read_text())["datasets"]["vqa-rad"]["type_right"]["blur"]["3"] == 100.0
    assert paths["perceiver_confusion.png"].read_bytes().startswith(PNG)
    # images of a training split are left out and counted (a bank may have been built from them)
    held = perceiver_summary(made, ["pdc"], seen={"vqa-rad/z"})
    assert held["heldout"] and held["left_out"] == {"vqa-rad": 1} and set(held["datasets"]) == {"slake", "all"}
    assert held["datasets"]["all"]["type_right"]["blur"][3] == pytest.approx(66.67)
    assert "vqa-rad: 1 image(s) left out, also in its training split." in perceiver_markdown(held)
    assert not summary["heldout"] and any("could not be read" in line for line in lines)
    # a cache written before verdicts were recorded: no report rather than a wrong one
    assert perceiver_summary([replace(r, verdict=None) for r in made], ["pdc"]) is None
    assert write_perceiver_report(None, tmp_path / "none") == {} and perceiver_markdown(None) == []

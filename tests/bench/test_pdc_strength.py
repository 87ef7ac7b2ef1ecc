"""PDC's strengths chosen on the model's answers (monai_imc.bench.pdc_strength), on the bundled model and bank
and a few real validation questions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_imc.bench.pdc_strength import base_strengths, choose_strengths, score_of, with_scaled_strengths
from monai_imc.bench.runner import BenchRunner
from monai_imc.data import load_dataset
from monai_imc.prototypes import PrototypeBank


@pytest.fixture(scope="module")
def runner(bundled) -> BenchRunner:
    pipeline = bundled.pipeline
    return BenchRunner(pipeline.model, pipeline.bank, pipeline=pipeline, methods=["imc+restore"], seed=0)


@pytest.fixture(scope="module")
def val_rows(data_dir: Path):
    rows = load_dataset(f"slake:{data_dir / 'slake'}", "validate")
    keys = sorted({r.image_key for r in rows})[:2]
    return [r for r in rows if r.image_key in keys][:6]


def test_score_of_is_closed_accuracy_or_open_recall(val_rows) -> None:
    closed = next(r for r in val_rows if r.closed)
    assert score_of(closed, closed.answer.upper()) == 1.0
    assert score_of(closed, "maybe") == 0.0
    opened = next(r for r in val_rows if not r.closed)
    assert score_of(opened, opened.answer) == 1.0
    assert score_of(opened, "zzz") == 0.0


def test_choice_splits_by_perceived_noise_and_leaves_the_bank(runner: BenchRunner, val_rows) -> None:
    bank = runner.pipeline.bank
    before = bank.tensors["strength"].clone()
    choice = choose_strengths(runner, val_rows, ["blur"], [5], scales=[1.0])
    assert torch.equal(bank.tensors["strength"], before), "the bank's strengths are put back"
    assert choice.scales == [0.0, 1.0] and choice.questions == len(val_rows)
    # scale 0 is PDC off: the answers of the restored (or raw) features, as the plain restore method gives
    pipeline = runner.pipeline
    total = 0.0
    for r in val_rows:
        view = runner.image(r, "blur", 5)
        raw = runner.encode(view)
        done = pipeline.restore_view(view, raw, pipeline.perceive(raw, views=[view])[0])
        total += score_of(r, pipeline.generate_many([done.features], [r.question], max_new_tokens=12)[0][0])
    assert choice.by_condition["blur/5"]["0.0"] == pytest.approx(100.0 * total / len(val_rows), abs=0.01)
    # every perceived noise's choice is its best pooled score (ties to the smaller scale)
    for noise, by_scale in choice.scores.items():
        best = max(by_scale.values())
        assert by_scale[str(choice.chosen[noise])] == best
        assert all(float(s) >= choice.chosen[noise] for s, v in by_scale.items() if v == best)
    # over all conditions (each has every question once), the chosen scales score at least any one scale
    cells = list(choice.by_condition.values())
    chosen = sum(c["chosen"] for c in cells)
    assert all(chosen >= sum(c[str(s)] for c in cells) - 1e-6 for s in choice.scales)


def test_scaled_bank_scales_rows_from_the_token_distance_strengths(bundled, tmp_path: Path) -> None:
    bank = bundled.pipeline.bank
    base = base_strengths(bank)
    once = with_scaled_strengths(bank, {"blur": 0.5, "jpeg": 0.0}, {"criterion": "test"})
    blur, jpeg, gibbs = (bank.noises.index(n) for n in ("blur", "jpeg", "gibbs"))
    assert torch.allclose(once.tensors["strength"][blur], 0.5 * base[blur])
    assert float(once.tensors["strength"][jpeg].abs().sum()) == 0.0
    assert torch.equal(once.tensors["strength"][gibbs], base[gibbs])
    again = with_scaled_strengths(once, {"blur": 0.5}, {"criterion": "test"})
    assert torch.allclose(again.tensors["strength"][blur], 0.5 * base[blur]), "scales never compound"
    assert torch.equal(again.tensors["strength"][jpeg], base[jpeg]), "a noise left out goes back to its base"
    once.save(tmp_path / "bank")
    loaded = PrototypeBank.load(tmp_path / "bank")
    assert loaded.manifest["choices"]["strength_scales"] == {"blur": 0.5, "jpeg": 0.0}
    assert loaded.bank_hash != bank.bank_hash
    assert loaded.strength("blur", 5) == pytest.approx(0.5 * float(base[blur, -1]))


def test_from_level_leaves_faint_perceptions_uncalibrated(bundled, tmp_path: Path) -> None:
    from monai_imc.calibrate import PDCCalibrator
    from monai_imc.perceive import Perception

    bank = bundled.pipeline.bank
    variant = bundled.pipeline.variant
    floored = with_scaled_strengths(bank, {"blur": 0.5}, {"criterion": "test"}, variant, from_level=3)
    key = "answer_strength" if variant == "answer" else "strength"
    strength = floored.tensors[key]
    low = [i for i, level in enumerate(bank.severities) if level < 3]
    assert low and float(strength[:, low].abs().sum()) == 0.0, "every noise's levels 1-2 are off"
    blur = bank.noises.index("blur")
    assert torch.allclose(strength[blur, len(low):], 0.5 * base_strengths(bank, variant)[blur, len(low):])
    floored.save(tmp_path / "bank")
    assert PrototypeBank.load(tmp_path / "bank").manifest["choices"][f"{key}_from_level"] == 3
    # a faint perceived artifact passes unchanged (and says why); the same artifact at level 3 is calibrated
    features = bundled.pipeline.encode([(torch.rand(96, 96, 3) * 255).to(torch.uint8).numpy()])
    calibrator = PDCCalibrator(floored, variant)
    same, (record,) = calibrator.calibrate(features, [Perception.given("blur", 2)])
    assert same is features and not record.applied
    assert record.reason == "level 2 is below the level PDC calibrates from (3)"
    assert floored.calibrates_from(variant) == 3 and bank.calibrates_from("shift") == 1
    moved, (record,) = calibrator.calibrate(features, [Perception.given("blur", 3)])
    assert record.applied and not torch.equal(moved.tokens[0], features.tokens[0])

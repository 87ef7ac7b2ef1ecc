"""The bundled reference model: loads like any checkpoint and answers real SLAKE test questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_imc.reference import bundled_model_path
from monai_imc.reference.data import load_vqa, normalize_answer
from monai_imc.reference.evaluate import closed_majority_accuracy, predict_answers
from monai_imc.reference.prompts import JUDGE_LABELS, judge_messages, parse_judgement

BUNDLE = bundled_model_path()


@pytest.fixture(scope="module")
def model():
    if not (BUNDLE / "model.safetensors").is_file():
        pytest.skip(f"the reference weights are not in the bundle yet ({BUNDLE}); train them with monai-imc train-reference")
    from monai_imc.models import load_model

    return load_model(str(BUNDLE), device="cpu")


def test_bundle_is_small_and_complete(model) -> None:
    size = sum(p.stat().st_size for p in BUNDLE.iterdir() if p.is_file())
    assert size <= 25 * 1024 * 1024
    whole = sum(p.stat().st_size for p in BUNDLE.parents[1].rglob("*") if p.is_file())
    assert whole <= 60 * 1024 * 1024, f"the bundle is {whole / 2**20:.1f} MiB"
    metrics = json.loads((BUNDLE / "metrics.json").read_text())
    assert metrics["heldout_noise"] not in metrics["trained_noises"]
    assert model.model.config.model_type == "llava"


def test_beats_majority_answer_on_slake_test_closed_questions(model, data_dir: Path) -> None:
    # A fixed subset: every 6th closed question of SLAKE test (70 questions), greedy decoding.
    closed = [r for r in load_vqa(data_dir, "slake", "test") if r.closed][::6]
    answers = predict_answers(model, closed)
    accuracy = 100.0 * sum(normalize_answer(a) == normalize_answer(r.answer) for a, r in zip(answers, closed)) / len(closed)
    baseline = closed_majority_accuracy(closed)
    assert accuracy > baseline, f"accuracy {accuracy:.1f} <= majority baseline {baseline:.1f} on {len(closed)}"
    assert answers[:10] == predict_answers(model, closed[:10])  # greedy decoding is deterministic


def test_judge_role_answers_with_a_label(model) -> None:
    reply = model.chat(judge_messages("Does the picture contain the liver?"), max_new_tokens=4)
    assert parse_judgement(reply) in JUDGE_LABELS

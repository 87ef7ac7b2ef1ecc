"""Text errors: seeding, realistic changes, kept facts (negation, laterality, numbers), monotone severity."""

from __future__ import annotations

import itertools
import re
import statistics

import pytest

from monai_imc.lexicon import NEGATION, numbers
from monai_imc.noise import get_noise, list_noises
from monai_imc.noise import text as text_noise
from monai_imc.noise.metrics import edit_distance

TEXT_NOISES = list_noises("text")
QUESTION = "Is there a pleural effusion in the left lung, without pneumothorax, above the 3 cm nodule?"


def test_at_least_four_text_noises() -> None:
    assert len(TEXT_NOISES) >= 4
    assert {"typo", "ocr", "asr", "abbreviation", "distractor"} <= set(TEXT_NOISES)


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_every_level_changes_the_text_and_seeds_reproduce(name: str) -> None:
    spec = get_noise(name)
    for severity in range(1, 6):
        noisy = spec.apply(QUESTION, severity=severity, seed=4)
        assert noisy != QUESTION
        assert noisy == spec.apply(QUESTION, severity=severity, seed=4)
    outputs = {spec.apply(QUESTION, severity=1, seed=s) for s in range(6)}
    assert len(outputs) > 1, f"{name} ignores its seed"


def _facts(text: str) -> tuple[list[str], int, list[str]]:
    """Numbers, how many negation cues, and the sides named (shorthand folded to the word)."""
    tokens = re.findall(r"[A-Za-z]+(?:/[a-z]+)?", text)
    negations = sum(t.lower() in NEGATION for t in tokens)
    sides = {"left": "left", "lt": "left", "right": "right", "rt": "right"}
    return numbers(text), negations, [sides[t.lower()] for t in tokens if t.lower() in sides]


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_negation_laterality_and_numbers_survive_every_level(name: str) -> None:
    texts = [QUESTION, "Is the right kidney not enlarged? 2 cysts, no hydronephrosis.", "No mass in the left lobe?",
             "Is the 2.5cm lesion in the rt lobe or the 12mm one?"]
    for text in texts:
        for seed in range(10):
            noisy = get_noise(name).apply(text, severity=5, seed=seed)
            assert _facts(noisy) == _facts(text), f"{name} changed the facts: {text!r} -> {noisy!r}"


@pytest.mark.parametrize("name", ["asr", "abbreviation"])
def test_word_noises_keep_the_question_word(name: str) -> None:
    for seed in range(10):
        assert get_noise(name).apply(QUESTION, severity=5, seed=seed).startswith("Is ")


def test_numbers_are_standalone_numerals() -> None:
    assert numbers("a 3 cm mass, 2.5mm nodule, 1,200 ml, 50% and 3x") == ["3", "2.5", "1,200", "50", "3"]
    assert numbers("I5 there a 1ung nodu1e?") == []


def test_examples_look_like_the_cause() -> None:
    assert "lt" in get_noise("abbreviation").apply("Is the mass in the left kidney?", severity=5).split()
    asr = get_noise("asr").apply("Is there a pleural effusion?", severity=5)
    assert "plural" in asr or "infusion" in asr
    distracted = get_noise("distractor").apply("Is this an MRI?", severity=2)
    assert "Is this an MRI?" in distracted and len(distracted) > 40


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_edit_distance_grows_with_severity_on_real_questions(name: str, real_questions: list[str]) -> None:
    spec = get_noise(name)
    per_question = [
        [edit_distance(q, spec.apply(q, severity=s, seed=i)) for s in range(1, 6)] for i, q in enumerate(real_questions)
    ]
    for q, distances in zip(real_questions, per_question):
        assert all(a <= b for a, b in itertools.pairwise(distances)), f"{name}: {q!r} -> {distances}"
        assert distances[0] > 0, f"{name} left {q!r} unchanged at severity 1"
    means = [statistics.mean(d[s] for d in per_question) for s in range(5)]
    assert all(a < b for a, b in itertools.pairwise(means)), f"{name}: mean distances {means}"


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_dict_twin_matches_array_transform(name: str) -> None:
    array_cls = get_noise(name).transform
    dict_cls = getattr(text_noise, array_cls.__name__ + "d")
    out = dict_cls(keys="question", severity=3, seed=9)({"question": QUESTION})
    assert out["question"] == array_cls(severity=3, seed=9)(QUESTION)


@pytest.mark.parametrize("name", TEXT_NOISES)
def test_empty_or_non_text_is_refused(name: str) -> None:
    transform = get_noise(name).make()
    for empty in ("", "   \n"):
        with pytest.raises(ValueError, match="empty"):
            transform(empty)
    with pytest.raises(TypeError, match="string"):
        transform(42)  # type: ignore[arg-type]


def test_bad_severity_is_named() -> None:
    with pytest.raises(ValueError, match="severity 9 is outside 1..5"):
        text_noise.KeyboardTypos(severity=9)

"""Guards on text repairs: negation, laterality, numbers and units, question form."""

from __future__ import annotations

import pytest

from monai_imc.guards import check_repair, question_form, text_facts
from monai_imc.noise import get_noise, list_noises


def test_spelling_repairs_pass() -> None:
    assert check_repair("Is there a pnuemothorax in the lft lung?", "Is there a pneumothorax in the left lung?") == [
        "laterality changed: {} -> {'left': 1}"
    ], "a side the noisy text does not name is a new fact"
    assert check_repair("Is there a pnuemothorax in the left lung?", "Is there a pneumothorax in the left lung?") == []
    assert check_repair("Is the mass in the lt kidney w/o contrast, 3cm?", "Is the mass in the left kidney without contrast, 3 cm?") == []


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        ("Is there no effusion?", "Is there effusion?", "negation"),
        ("Is the lesion not enhancing?", "Is the lesion enhancing?", "negation"),
        ("Is the left kidney enlarged?", "Is the right kidney enlarged?", "laterality"),
        ("Is the nodule 3 cm?", "Is the nodule 8 cm?", "numbers"),
        ("Are there 2 cysts?", "Are there cysts?", "numbers"),
        ("Is there a mass?", "Where is the mass?", "form"),
        ("Is there a mass?", "yes", "form"),
        ("What organ is this?", "Is this the liver?", "form"),
    ],
)
def test_changed_facts_are_caught(before: str, after: str, problem: str) -> None:
    violations = check_repair(before, after)
    assert any(problem in v for v in violations), violations


def test_misspelt_question_word_may_be_restored_but_not_dropped() -> None:
    assert question_form("Si there a mass?") == "unknown"
    assert check_repair("Si there a mass?", "Is there a mass?") == []
    assert check_repair("Si there a mass?", "There is a mass.") != []
    assert check_repair("Si there a mass?", "Si there a mass?") == []


def test_facts_of_text() -> None:
    facts = text_facts("Is there no mass in the rt lobe, 2.5cm, without edema?")
    assert dict(facts.negations) == {"no": 1, "without": 1}
    assert dict(facts.sides) == {"right": 1} and facts.numbers == ("2.5",) and facts.form == "yes/no"


@pytest.mark.parametrize("name", list_noises("text"))
def test_text_noise_never_trips_the_guards(name: str) -> None:
    questions = ["Is there no effusion in the left lung, 3 cm above the rt kidney?",
                 "Which side is the 2 cm nodule on, left or right?", "Does the liver look normal?"]
    for q in questions:
        for seed in range(8):
            noisy = get_noise(name).apply(q, severity=5, seed=seed)
            facts, noisy_facts = text_facts(q), text_facts(noisy)
            assert (facts.negations, facts.sides, facts.numbers) == (
                noisy_facts.negations, noisy_facts.sides, noisy_facts.numbers), (q, noisy)

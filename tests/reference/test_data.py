"""The reference model's data: splits as documented, the held-out slice, labels and role pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_imc.reference.data import (
    ORGANS,
    PLANES,
    QUESTION_ORGANS,
    VQARow,
    agent_examples,
    answer_labels,
    image_labels,
    is_heldout_image,
    load_vqa,
    normalize_answer,
)


def test_normalize_answer() -> None:
    assert normalize_answer("The Left Lung.") == "left lung"
    assert normalize_answer("  Yes ") == "yes"
    assert normalize_answer("an X-Ray") == "x ray"


def test_exact_match_compares_normalised_answers() -> None:
    from monai_imc.answers import exact_match

    assert exact_match("The left lung.", "left lung") and exact_match("X-Ray", "x ray")
    assert not exact_match("left lung", "right lung") and not exact_match("lung", "left lung")


def test_heldout_slice_is_fixed_and_about_five_percent() -> None:
    keys = [f"slake/xmlab{i}/source.jpg" for i in range(2000)]
    share = sum(map(is_heldout_image, keys)) / len(keys)
    assert 0.03 < share < 0.07
    assert [is_heldout_image(k) for k in keys[:50]] == [is_heldout_image(k) for k in keys[:50]]


def test_splits_match_the_data_readmes(data_dir: Path) -> None:
    assert len(load_vqa(data_dir, "slake", "train")) == 4917
    assert len(load_vqa(data_dir, "slake", "validate")) == 1053
    test = load_vqa(data_dir, "slake", "test")
    assert len(test) == 1061 and sum(r.closed for r in test) == 416
    rad = load_vqa(data_dir, "vqa_rad", "test")
    assert len(rad) == 451 and sum(r.closed for r in rad) == 272
    assert len(load_vqa(data_dir, "vqa_rad", "train")) == 1797
    with pytest.raises(ValueError, match="split"):
        load_vqa(data_dir, "vqa_rad", "validate")


def test_training_never_sees_test_images_or_the_heldout_slice(data_dir: Path) -> None:
    from monai_imc.reference.train import training_rows

    train, heldout = training_rows(data_dir)
    train_keys = {r.image_key for r in train}
    assert not train_keys & {r.image_key for r in heldout}
    assert {r.split for r in train} == {"train", "validate"}
    slake_test = {r.image_key for r in load_vqa(data_dir, "slake", "test")}
    assert not train_keys & slake_test
    assert heldout and all(is_heldout_image(r.image_key) for r in heldout)


def test_slake_image_labels_come_from_detection_json(data_dir: Path) -> None:
    row = next(r for r in load_vqa(data_dir, "slake", "train") if r.image_key == "slake/xmlab1/source.jpg")
    labels = image_labels(row)
    assert labels.modality >= 0 and labels.region >= 0 and labels.location >= 0
    liver = ORGANS.index("Liver")
    assert labels.organs[liver] == 1 and sum(labels.organs) == 1
    x, y = labels.centres[liver]
    assert 0 < x < 1 and 0 < y < 1  # [54, 106, 30, 31] on a 256 px image
    rad = load_vqa(data_dir, "vqa_rad", "train")[0]
    assert image_labels(rad).organs == () and image_labels(rad).region >= 0


def _row(question: str, answer: str) -> VQARow:
    return VQARow(Path("x.jpg"), question, answer, answer.lower() in ("yes", "no"), "slake", "train", "slake/x")


def test_answer_labels_read_plane_normality_and_presence_from_the_answers() -> None:
    plane, abnormal, present = answer_labels(
        [
            _row("Does the picture contain brian?", "Yes"),
            _row("Does the picture contain spleen?", "No"),
            _row("Does the kidney exist in this picture?", "Yes"),
            _row("What is the scanning plane of this image?", "Transverse Plane"),
            _row("Is the lung healthy?", "Yes"),
        ]
    )
    assert plane == PLANES.index("transverse") and abnormal == 0
    assert present[QUESTION_ORGANS.index("brain")] == 1 and present[QUESTION_ORGANS.index("kidney")] == 1
    assert present[QUESTION_ORGANS.index("spleen")] == 0 and present[QUESTION_ORGANS.index("liver")] == -1
    # one abnormal answer makes the image abnormal, whatever the order
    assert answer_labels([_row("Is the lung healthy?", "Yes"), _row("Is the liver abnormal?", "Yes")])[1] == 1
    assert answer_labels([_row("Is this a coronal section?", "Yes")])[0] == PLANES.index("coronal")
    assert answer_labels([_row("Is this a coronal section?", "No")])[0] == -1


def test_detection_boxes_count_as_present_in_the_answer_labels(data_dir: Path) -> None:
    rows = [r for r in load_vqa(data_dir, "slake", "train") if r.image_key == "slake/xmlab1/source.jpg"]
    labels = image_labels(rows[0], rows)
    assert labels.present[QUESTION_ORGANS.index("liver")] == 1  # boxed in detection.json
    assert image_labels(rows[0]).present[QUESTION_ORGANS.index("liver")] == 1
    assert labels.modality == image_labels(rows[0]).modality


def test_agent_examples_label_every_noisy_version() -> None:
    questions = ["Does the picture contain the liver on the left side?", "What modality is used to take this image?"]
    examples = agent_examples(questions, ["typo", "distractor"], seed=3, variants=2)
    assert {e.noise for e in examples} == {"clean", "typo", "distractor"}
    for e in examples:
        assert e.target == (e.clean if e.role == "rewrite" else e.noise)
        assert (e.noisy == e.clean) == (e.noise == "clean")
        assert e.noisy in e.prompt
    assert examples == agent_examples(questions, ["typo", "distractor"], seed=3, variants=2)
    assert examples != agent_examples(questions, ["typo", "distractor"], seed=4, variants=2)

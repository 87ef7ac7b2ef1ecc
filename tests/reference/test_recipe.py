"""The recipe end to end on a tiny subset: it writes a checkpoint that loads through ``load_model``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_imc.cli import main
from monai_imc.models import LlavaAdapter, load_model
from monai_imc.reference.prompts import judge_messages


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "reference-vlm"
    code = main(
        [
            "train-reference", "--data", str(data_dir), "--out", str(out), "--seed", "0",
            "--limit", "48", "--max-steps", "2", "--eval-every", "1",
            "--eval-limit", "6", "--agent-eval-questions", "2",
        ]
    )
    assert code == 0
    return out


def test_recipe_writes_every_artifact(trained: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
                 "loss_curve.png", "metrics.json", "training_config.json"):
        assert (trained / name).is_file(), name
    assert (trained / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["heldout_noise"] == "ocr" and "ocr" not in metrics["trained_noises"]
    assert metrics["steps"] == 2 and metrics["stopped_early"] is False and metrics["best_step"] in (1, 2)
    curve = metrics["heldout_curve"]
    assert metrics["select"] == "accuracy" and [c["step"] for c in curve] == [1, 2]
    assert all(0 <= c["closed"] <= 100 and 0 <= c["open"] <= 100 and c["loss"] > 0 for c in curve)
    best = max(curve, key=lambda c: (c["closed"] + c["open"], -c["step"]))  # the first of equals is kept
    assert metrics["best_step"] == best["step"] and metrics["best_heldout_answer_loss"] == round(best["loss"], 4)
    for name in ("slake_test", "vqa_rad_test", "slake_test_blank_image", "slake_test_shuffled_image"):
        assert set(metrics[name]) >= {"closed_acc", "open_acc", "open_recall", "closed_n", "open_n"}
        assert metrics[name]["closed_n"] + metrics[name]["open_n"] == 6
    assert sum(g["n"] for g in metrics["slake_test"]["by_group"].values()) == 6
    assert set(metrics["roles"]["by_noise"]) <= {"clean", "abbreviation", "asr", "distractor", "ocr", "typo"}
    config = json.loads((trained / "training_config.json").read_text())
    assert config["heldout_noise"] == "ocr" and config["trained_noises"] == ["abbreviation", "asr", "distractor", "typo"]


def test_result_loads_and_generates(trained: Path, data_dir: Path) -> None:
    from PIL import Image

    model = load_model(str(trained), device="cpu")
    assert isinstance(model, LlavaAdapter)
    assert model.model.config.model_type == "llava"
    with Image.open(data_dir / "slake" / "imgs" / "xmlab1" / "source.jpg") as im:
        features = model.encode_images(im.convert("RGB"))
    assert features.num_image_tokens == (49,) and features.tokens[0].shape == (49, 1280)
    # the loaded tower is the pretrained one, BatchNorm running statistics included
    from monai_imc.reference.train import tower_state

    source, _ = tower_state(None)
    loaded = model.model.model.vision_tower.state_dict()
    assert all(loaded[k].equal(v) for k, v in source.items())
    assert isinstance(model.generate(features, "Is this a CT?", max_new_tokens=4), str)
    assert isinstance(model.chat(judge_messages("Is this a CT?"), max_new_tokens=4), str)


def test_recipe_is_deterministic(trained: Path, data_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from monai_imc.reference.train import TrainConfig, train_reference

    again = train_reference(
        TrainConfig(data=str(data_dir), out=str(tmp_path / "again"), seed=0, limit=48, max_steps=2, eval_every=1,
                    eval_limit=0, agent_eval_questions=0)
    )
    first, second = load_file(trained / "model.safetensors"), load_file(again.out / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(first[k].equal(second[k]) for k in first)


def test_tower_stays_pretrained_and_the_language_model_trains(trained: Path) -> None:
    from monai_imc.reference.train import tower_state

    config = json.loads((trained / "training_config.json").read_text())
    source, _ = tower_state(None)
    tower, _ = tower_state(str(trained))  # the tower as saved in the checkpoint
    assert tower.keys() == source.keys() and all(tower[k].equal(source[k]) for k in tower)
    assert all("vision_tower" not in name for name in config["trained_parameters"])
    assert any("multi_modal_projector" in name for name in config["trained_parameters"])
    assert any("language_model" in name for name in config["trained_parameters"])


def test_shuffled_control_shows_every_image_another_one(data_dir: Path) -> None:
    from monai_imc.reference.data import load_vqa
    from monai_imc.reference.evaluate import shuffled_images

    rows = load_vqa(data_dir, "slake", "test")
    mapping = shuffled_images(rows)
    own = {r.image_key: r.image for r in rows}
    assert mapping.keys() == own.keys()
    assert all(mapping[k] != own[k] for k in own)
    assert sorted(map(str, mapping.values())) == sorted(map(str, own.values()))
    assert mapping == shuffled_images(rows)


def test_heldout_match_is_what_greedy_decoding_writes(trained: Path, data_dir: Path) -> None:
    """The held-out accuracy that can pick the saved step reads one forward: an answer matches exactly when
    ``generate`` (greedy) writes it. Checked against transformers' own generate and loss on a real image."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from monai_imc.models.efficientnet_lite import register
    from monai_imc.reference.features import _encode, load_rgb
    from monai_imc.models.answer_loss import answer_forward

    register()
    model = LlavaForConditionalGeneration.from_pretrained(trained).eval()
    processor = AutoProcessor.from_pretrained(trained)
    image = load_rgb(data_dir / "slake" / "imgs" / "xmlab1" / "source.jpg")
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this a CT?"}]}],
        add_generation_prompt=True,
    )
    inputs = processor(images=image, text=text, return_tensors="pt")
    prompt = inputs["input_ids"][0].tolist()
    with torch.no_grad():
        written = model.generate(**inputs, max_new_tokens=3, do_sample=False)[0, len(prompt):].tolist()
        other = (written[-1] + 1) % model.config.text_config.vocab_size
        feats = _encode(model, processor, [image])
        pad = int(processor.tokenizer.pad_token_id)
        items = [(0, prompt, written), (0, prompt, written[:-1] + [other]), (0, prompt, [other] + written[1:])]
        _loss, matched = answer_forward(model, items, feats, pad)
        assert matched.tolist() == [True, False, written[0] == other]
        # the loss is transformers' answer-token cross-entropy (first item), and per question averages items
        labels = torch.tensor([[-100] * len(prompt) + written])
        ids = torch.tensor([prompt + written])
        reference = model(input_ids=ids, pixel_values=inputs["pixel_values"], labels=labels).loss
        single, _ = answer_forward(model, items[:1], feats, pad)
        assert torch.allclose(single, reference, atol=1e-5)
        two, _ = answer_forward(model, [items[0], (0, prompt, written[:1])], feats, pad, per_example=True)
        first, _ = answer_forward(model, [(0, prompt, written[:1])], feats, pad)
        assert torch.allclose(two, (single + first) / 2, atol=1e-5)


def test_weight_averaging_saves_the_mean_of_the_last_half(data_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from monai_imc.reference.train import TrainConfig, train_reference

    def run(name: str, select: str, eval_every: int) -> tuple[dict, dict]:
        result = train_reference(
            TrainConfig(data=str(data_dir), out=str(tmp_path / name), seed=0, limit=48, max_steps=4,
                        eval_every=eval_every, select=select, eval_limit=0, agent_eval_questions=0)
        )
        return load_file(result.out / "model.safetensors"), result.metrics

    # one evaluation in the last half (step 4): the average is that step, as the accuracy selection keeps it
    single, metrics = run("single", "average", 4)
    kept, _ = run("kept", "accuracy", 4)
    assert metrics["select"] == "average" and metrics["heldout_average"]["steps"] == [4]
    assert all(single[k].equal(kept[k]) for k in kept)
    # evaluations at steps 1-4: steps 2, 3 and 4 are averaged, which no single step's weights equal
    mean, metrics = run("mean", "average", 1)
    assert metrics["heldout_average"]["steps"] == [2, 3, 4] and metrics["best_step"] == 4
    assert 0 <= metrics["heldout_average"]["closed"] <= 100 and metrics["heldout_average"]["loss"] > 0
    projector = [k for k in mean if "multi_modal_projector" in k]
    assert projector and not all(mean[k].equal(kept[k]) for k in projector)


def test_token_dropout_and_weight_decay_regularise_the_same_steps(trained: Path, data_dir: Path, tmp_path: Path) -> None:
    """Token dropout and a stronger weight decay change what the same steps train; dropout is seeded (two runs
    train the same weights), and each is recorded in the run's training config."""
    from safetensors.torch import load_file

    from monai_imc.reference.train import TrainConfig, train_reference

    def run(name: str, **lever: float) -> dict:
        result = train_reference(
            TrainConfig(data=str(data_dir), out=str(tmp_path / name), seed=0, limit=48, max_steps=2, eval_every=1,
                        eval_limit=0, agent_eval_questions=0, **lever)
        )
        assert json.loads((result.out / "training_config.json").read_text())[next(iter(lever))] == next(iter(lever.values()))
        return load_file(result.out / "model.safetensors")

    recipe = load_file(trained / "model.safetensors")  # the default recipe: token dropout 0.15, weight decay 0.01
    projector = [k for k in recipe if "multi_modal_projector" in k]
    dropped, again = run("dropout", token_dropout=0.5), run("dropout-again", token_dropout=0.5)
    assert all(dropped[k].equal(again[k]) for k in dropped)
    assert not all(dropped[k].equal(recipe[k]) for k in projector)
    decayed = run("decay", weight_decay=0.5)
    assert not all(decayed[k].equal(recipe[k]) for k in projector)

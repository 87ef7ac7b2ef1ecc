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

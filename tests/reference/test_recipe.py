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
            "--limit", "48", "--max-steps", "2", "--vision-warmup-steps", "2",
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
    assert metrics["steps"] == 2 and metrics["stopped_early"] is False
    for name in ("slake_test", "vqa_rad_test"):
        assert set(metrics[name]) >= {"closed_acc", "open_acc", "open_recall", "closed_n", "open_n"}
        assert metrics[name]["closed_n"] + metrics[name]["open_n"] == 6
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
    assert features.num_image_tokens == (64,)
    assert isinstance(model.generate(features, "Is this a CT?", max_new_tokens=4), str)
    assert isinstance(model.chat(judge_messages("Is this a CT?"), max_new_tokens=4), str)


def test_recipe_is_deterministic(trained: Path, data_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from monai_imc.reference.train import TrainConfig, train_reference

    again = train_reference(
        TrainConfig(data=str(data_dir), out=str(tmp_path / "again"), seed=0, limit=48, max_steps=2,
                    vision_warmup_steps=2, eval_limit=0, agent_eval_questions=0)
    )
    first, second = load_file(trained / "model.safetensors"), load_file(again.out / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(first[k].equal(second[k]) for k in first)


def test_freeze_vision_keeps_the_warmed_up_tower(data_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from monai_imc.reference.train import TrainConfig, train_reference

    def run(name: str, steps: int, freeze: bool) -> dict:
        result = train_reference(
            TrainConfig(data=str(data_dir), out=str(tmp_path / name), seed=0, limit=48, max_steps=steps,
                        vision_warmup_steps=2, freeze_vision=freeze, answer_labels=True, eval_limit=0,
                        agent_eval_questions=0)
        )
        assert result.metrics["freeze_vision"] is freeze and result.metrics["answer_labels"] is True
        return load_file(result.out / "model.safetensors")

    warmed, frozen, unfrozen = run("warm-up only", 0, True), run("frozen", 2, True), run("unfrozen", 2, False)
    tower = [k for k in warmed if "vision_tower" in k]
    language = [k for k in warmed if "language_model" in k]
    assert tower and language
    assert all(frozen[k].equal(warmed[k]) for k in tower)
    assert not all(unfrozen[k].equal(warmed[k]) for k in tower)
    assert not all(frozen[k].equal(warmed[k]) for k in language)

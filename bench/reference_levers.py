"""Choose the reference recipe on validation: train a variant with SLAKE's validation split held out.

The recipe's own held-out slice (5% of the training images, 270 questions) is too small to tell recipes
apart by a few points, so for the choice SLAKE's validation split (1,053 questions on 96 images, 422
closed) is taken out of training and becomes the held-out set: its greedy exact match is measured during
training (``heldout_curve``) and, at the end, on the saved checkpoint with the real image and with a
black one. The test sets are never read. Each variant is one ``TrainConfig`` override (JSON)::

    python bench/reference_levers.py base600 600
    python bench/reference_levers.py long3000 3000 '{"select": "accuracy", "eval_every": 250}'
    python bench/reference_levers.py layers4 600 '{"arch": {"text_layers": 4}}'
    python bench/reference_levers.py qfirst 600 --question-first

Writes ``results/levers/NAME/`` (the checkpoint, ``metrics.json``: ``val``, ``val_blank``,
``heldout_curve``) and prints one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import monai_imc.reference.evaluate as evaluate_module
import monai_imc.reference.train as train_module
from monai_imc.data.rows import is_heldout_image
from monai_imc.reference.architecture import ArchitectureConfig
from monai_imc.reference.data import VQARow, load_vqa


def validation_split(data: str) -> tuple[list[VQARow], list[VQARow]]:
    """(training rows without SLAKE's validation images, SLAKE's validation rows)."""
    validation = load_vqa(data, "slake", "validate")
    keys = {r.image_key for r in validation}
    train = load_vqa(data, "slake", "train") + load_vqa(data, "vqa_rad", "train")
    return [r for r in train if r.image_key not in keys and not is_heldout_image(r.image_key)], validation


def evaluate_validation(out: str | Path, data: str, heldout: list[VQARow], blank_images: bool = False, **_: Any) -> dict:
    """Greedy exact match of the saved checkpoint on the validation rows, with the image and a black one."""
    import torch

    from monai_imc.models import load_model
    from monai_imc.reference.evaluate import evaluate_vqa

    model = load_model(str(out), device="cpu", dtype=torch.float32)
    result = {"val": evaluate_vqa(model, heldout, blank_images=blank_images)}
    if not blank_images:
        result["val_blank"] = evaluate_vqa(model, heldout, blank_images=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("steps", type=int)
    p.add_argument("overrides", nargs="?", default="{}", help="TrainConfig fields as JSON (arch: its fields)")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="results/levers")
    p.add_argument("--feature-cache", default="results/levers/feature_cache.pt")
    p.add_argument("--question-first", action="store_true", help="train with the question before the image tokens")
    args = p.parse_args(argv)

    train_module.training_rows = validation_split
    evaluate_module.evaluate_checkpoint = evaluate_validation
    if args.question_first:
        chat_text = train_module._chat_text

        def question_first(tokenizer: Any, template: str, content: list[dict[str, str]]) -> str:
            if len(content) == 2 and content[0].get("type") == "image":
                content = [content[1], content[0]]
            return chat_text(tokenizer, template, content)

        train_module._chat_text = question_first
        evaluate_module.evaluate_checkpoint = lambda *a, **k: {}  # generate would put the image first
    overrides = json.loads(args.overrides)
    arch = ArchitectureConfig(**overrides.pop("arch", {}))
    settings = dict(
        data=args.data, out=f"{args.out}/{args.name}", max_steps=args.steps, eval_every=100, minutes=120,
        agent_eval_questions=0, feature_cache=args.feature_cache, threads=1, arch=arch,
    )
    settings.update(overrides)
    result = train_module.train_reference(train_module.TrainConfig(**settings))
    m = result.metrics
    curve = [(c["step"], c["closed"], c["open"]) for c in m["heldout_curve"]]
    print(args.name, json.dumps({k: m[k] for k in ("val", "val_blank") if k in m}), "kept", result.best_step, "curve", curve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Which descriptor of the model's own vision features tells the artifact best? (issue 5, what was tried)

For a reference model, encode training images (SLAKE train, never test) clean and under every image
noise at severities 1, 3 and 5, keep the hidden states of every vision layer from the same pass, and fit
the perceiver's classifier (a linear discriminant with a shared, shrunk covariance over ``clean`` and every
(noise, severity)) on several descriptors. Report the noise-type accuracy per severity on SLAKE validation
images, and how often a clean validation image is called clean. The perceiver ships the first descriptor
(mean and standard deviation of the projector-input tokens); the others need every layer's output.

    python bench/perceiver_descriptors.py --model bundles/monai_imc_vqa/models/reference-vlm \\
        --data ../shared/data --train 60 --eval 25 --out results/perceiver-descriptors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.data import load_view
from monai_imc.models import load_model
from monai_imc.noise import list_noises
from monai_imc.prototypes import corrupt
from monai_imc.reference.data import load_vqa

SEVERITIES = (1, 3, 5)


def layer_statistics(hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, descriptors of one layer's patch tokens ``(B, 1 + N, D)`` (the class token dropped)."""
    t = hidden[:, 1:].float()
    b, n, d = t.shape
    side = round(n**0.5)
    mean, std = t.mean(1), t.std(1)
    out = {"mean+std": torch.cat([mean, std], 1)}
    if side * side == n:
        grid = t.reshape(b, side, side, d)
        dx = (grid[:, :, 1:] - grid[:, :, :-1]).abs().mean((1, 2))
        dy = (grid[:, 1:] - grid[:, :-1]).abs().mean((1, 2))
        z = (t - mean[:, None]) / std[:, None].clamp_min(1e-6)
        ratio = lambda a: (a.clamp_min(1e-6) / std.clamp_min(1e-6)).log()
        out["texture"] = torch.cat([mean, std.clamp_min(1e-6).log(), ratio(dx), ratio(dy),
                                    (z**4).mean(1).clamp_min(1e-6).log()], 1)
    return out


def encode(model, tower, arrays: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
    """Every vision layer's descriptors for a batch of images, from one pass."""
    inputs = model.processor.image_processor(arrays, return_tensors="pt")
    with torch.no_grad():
        hidden = tower(inputs["pixel_values"].float(), output_hidden_states=True).hidden_states
    return [layer_statistics(h) for h in hidden]


def collect(model, tower, paths: list[str], size: int, seed: int) -> tuple[dict, list[tuple[str, int]]]:
    """Descriptors of each image clean and under every noise x severity, by (layer, kind)."""
    noises = list_noises("image")
    store: dict[tuple[int, str], list[torch.Tensor]] = {}
    labels: list[tuple[str, int]] = []
    for i, path in enumerate(tqdm(paths, desc="images")):
        clean = load_view(path, size)
        if clean.ndim == 2:
            clean = np.repeat(clean[..., None], 3, -1)
        views, names = [clean], [("clean", 0)]
        for j, noise in enumerate(noises):
            for s in SEVERITIES:
                views.append(corrupt(clean, noise, s, seed + 31 * i + j))
                names.append((noise, s))
        for layer, kinds in enumerate(encode(model, tower, views)):
            for kind, value in kinds.items():
                store.setdefault((layer, kind), []).append(value)
        labels += names
    return {k: torch.cat(v) for k, v in store.items()}, labels


def discriminant(train: torch.Tensor, train_y: list, test: torch.Tensor, test_y: list) -> dict:
    """The perceiver's classifier on one descriptor: type accuracy per severity, clean called clean."""
    a, b = train.double(), test.double()
    center, scale = a.mean(0), a.std(0).clamp_min(1e-6)
    a, b = (a - center) / scale, (b - center) / scale
    classes = sorted(set(train_y))
    index = {c: k for k, c in enumerate(classes)}
    lab = torch.tensor([index[c] for c in train_y])
    means = torch.stack([a[lab == k].mean(0) for k in range(len(classes))])
    within = a - means[lab]
    cov = within.T @ within / max(1, len(a) - len(classes))
    cov = 0.9 * cov + 0.1 * torch.trace(cov) / cov.shape[0] * torch.eye(cov.shape[0], dtype=cov.dtype)
    w = means @ torch.linalg.inv(cov)
    post = torch.softmax(b @ w.T - 0.5 * (w * means).sum(1), 1)
    types = sorted({c[0] for c in classes})
    by_type = torch.stack([post[:, [k for k, c in enumerate(classes) if c[0] == t]].sum(1) for t in types], 1)
    predicted = [types[k] for k in by_type.argmax(1).tolist()]
    result = {}
    for s in SEVERITIES:
        picked = [k for k, y in enumerate(test_y) if y[1] == s]
        result[f"type_accuracy_severity_{s}"] = round(100 * float(np.mean([predicted[k] == test_y[k][0] for k in picked])), 1)
    clean = [k for k, y in enumerate(test_y) if y[0] == "clean"]
    result["clean_called_clean"] = round(100 * float(np.mean([predicted[k] == "clean" for k in clean])), 1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--train", type=int, default=60, help="SLAKE train images to fit on")
    p.add_argument("--eval", type=int, default=25, help="SLAKE validation images to test on")
    p.add_argument("--size", type=int, default=256, help="longest side of the images before noise")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    model = load_model(args.model, device="cpu")
    tower = model.vision_tower

    def images(split: str, n: int) -> list[str]:
        return list(dict.fromkeys(str(r.image) for r in load_vqa(args.data, "slake", split)))[:n]

    train_x, train_y = collect(model, tower, images("train", args.train), args.size, args.seed)
    test_x, test_y = collect(model, tower, images("validate", args.eval), args.size, args.seed + 7)
    last = max(layer for layer, _ in train_x)
    candidates = {
        "projector input: mean + std (shipped)": [(last, "mean+std")],
        "every layer: mean + std": [(k, "mean+std") for k in range(last + 1)],
        "patch embedding: texture": [(0, "texture")],
        "every layer: texture": [(k, "texture") for k in range(last + 1)],
    }
    results = {"command": " ".join(sys.argv), "train_images": args.train, "eval_images": args.eval,
               "severities": list(SEVERITIES), "descriptors": {}}
    for name, keys in candidates.items():
        keys = [k for k in keys if k in train_x]
        results["descriptors"][name] = discriminant(torch.cat([train_x[k] for k in keys], 1), train_y,
                                                    torch.cat([test_x[k] for k in keys], 1), test_y)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

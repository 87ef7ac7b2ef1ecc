"""Per-family timings of encode_images and generate on the tiny local checkpoints.

Builds (or reuses) one tiny checkpoint per family, loads it through ``load_model`` and prints, per
family, the median wall time of ``encode_images`` (two images of different sizes), ``generate`` from
those features (no vision pass), the family's own ``model.generate`` from pixels (vision inside) and
``log_likelihood``. Tiny models measure the adapter's overhead, not a real model's speed.

Usage:
    HF_HUB_OFFLINE=1 python bench/bench_models.py [--runs 15] [--new-tokens 8] [--threads 1] [--device cpu]
        [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Measure the checkout this script lives in, even when another copy of monai_imc is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from PIL import Image

from monai_imc.models import HFVisionLanguageModel, load_model
from monai_imc.models.tiny import TINY_FAMILIES, build_tiny_checkpoint

QUESTION = "Is there a nodule in the left lung?"


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def pixel_generate(model: HFVisionLanguageModel, images: list, new_tokens: int) -> Callable[[], None]:
    """The family's own generate from pixels (the baseline: the vision tower runs inside)."""
    features = model.encode_images(images)  # only to get the placeholders; timed separately below
    prompt = model.build_prompt(QUESTION, len(images))
    inputs = model.text_inputs(prompt, features.placeholders)
    if model.processor is not None:
        nested = [images] if model.family == "gemma3" else images
        pixels = model.processor.image_processor(nested, return_tensors="pt")
        extra = {"pixel_values": pixels["pixel_values"].to(model.device, model.model.dtype)}
    else:
        pixels = model.image_processor(images=images, return_tensors="pt")
        extra = {
            "pixel_values": pixels["pixel_values"].to(model.device, model.model.dtype),
            "image_grid_thw": pixels["image_grid_thw"].to(model.device),
        }

    def run() -> None:
        with torch.no_grad():
            model.model.generate(
                **inputs,
                **extra,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=model.tokenizer.pad_token_id,
            )

    return run


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per measurement (median reported)")
    parser.add_argument("--new-tokens", type=int, default=8, help="tokens generated per answer")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the tiny checkpoints")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: steadiest timings for tiny models)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, size=s, dtype=np.uint8)) for s in [(48, 64, 3), (64, 32, 3)]
    ]
    root = args.dir or Path(tempfile.mkdtemp(prefix="monai_imc_bench_"))
    gen = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens}

    rows = []
    for family in TINY_FAMILIES:
        path = root / family
        if not (path / "config.json").is_file():
            build_tiny_checkpoint(family, path)
        model = load_model(str(path), device=args.device)
        features = model.encode_images(images)
        encode = median_ms(partial(model.encode_images, images), args.runs)
        generate = median_ms(partial(model.generate, features, QUESTION, **gen), args.runs)
        baseline = median_ms(pixel_generate(model, images, args.new_tokens), args.runs)
        score = median_ms(partial(model.log_likelihood, " a left lung nodule.", "The CT shows"), args.runs)
        tokens = "+".join(str(t.shape[0]) for t in features.tokens)
        rows.append((family, str(model.device), tokens, encode, generate, baseline, score))

    header = (
        "family",
        "device",
        "vision tokens",
        "encode ms",
        "generate ms",
        "pixels->generate ms",
        "loglik ms",
    )
    print(
        f"tiny checkpoints in {root}; 2 images (48x64, 64x32); {args.new_tokens} new tokens; "
        f"median of {args.runs} runs; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    widths = [max(len(h), 12) for h in header]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for family, device, tokens, *times in rows:
        cells = [family, device, tokens, *(f"{t:.1f}" for t in times)]
        print(" | ".join(c.ljust(w) for c, w in zip(cells, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

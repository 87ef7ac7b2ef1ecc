"""Fidelity per severity of every noise: mean PSNR and SSIM on real images, mean character edit distance on
real questions (SLAKE + VQA-RAD, every 25th question), with the share of inputs whose fidelity worsens
strictly from level 1 to 5; and the median SSIM of every image noise on the views the model is shown
(``--views`` SLAKE + VQA-RAD training images at 256 px, the bank's size), beside the median over the other
image noises: the check of a noise's levels against SSIM-calibrated severities (MedFM-Robust).

    python bench/noise_fidelity.py --data ../shared/data --views 40
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.data import get_testdata_file

from monai_imc.data import dataset_images
from monai_imc.data.views import load_view
from monai_imc.imageio import read_image
from monai_imc.noise import get_noise, list_noises
from monai_imc.noise.metrics import edit_distance, psnr, ssim
from monai_imc.noise.preview import shrink

DICOM = ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm", "MR2_UNCI.dcm", "emri_small.dcm")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--size", type=int, default=512, help="shrink images to this longest side first")
    p.add_argument("--views", type=int, default=40, help="training views for the SSIM table (half per dataset)")
    args = p.parse_args(argv)
    data = Path(args.data)
    images = {name: shrink(read_image(get_testdata_file(name)).array, args.size) for name in DICOM}
    for rel in ("slake/imgs/xmlab1/source.jpg", "slake/imgs/xmlab102/source.jpg", "vqa_rad/images/synpic54610.jpg"):
        images[rel] = np.asarray(Image.open(data / rel).convert("L"))[None]
    questions = []
    for rel in ("slake/qa_en.jsonl", "vqa_rad/qa.jsonl"):
        rows = [json.loads(line) for line in (data / rel).read_text().splitlines()]
        questions.extend(r["question"] for r in rows[::25])

    print(f"images: {len(images)} ({', '.join(images)}); questions: {len(questions)}")
    print(f"{'noise':13s} {'measure':9s} " + " ".join(f"{'S' + str(s):>7s}" for s in range(1, 6)) + "  strictly worse")
    for name in list_noises("image"):
        per = [[psnr(img, get_noise(name).apply(img, s, seed=0)) for s in range(1, 6)] for img in images.values()]
        means = np.mean(per, axis=0)
        strict = sum(all(a > b for a, b in itertools.pairwise(v)) for v in per)
        print(f"{name:13s} {'PSNR dB':9s} " + " ".join(f"{m:7.2f}" for m in means) + f"  {strict}/{len(per)}")
        per = [[ssim(img, get_noise(name).apply(img, s, seed=0)) for s in range(1, 6)] for img in images.values()]
        strict = sum(all(a > b for a, b in itertools.pairwise(v)) for v in per)
        print(f"{name:13s} {'SSIM':9s} " + " ".join(f"{m:7.3f}" for m in np.mean(per, axis=0)) + f"  {strict}/{len(per)}")
    for name in list_noises("text"):
        per = [[edit_distance(q, get_noise(name).apply(q, s, seed=i)) for s in range(1, 6)] for i, q in enumerate(questions)]
        means = np.mean(per, axis=0)
        strict = sum(all(a < b for a, b in itertools.pairwise(v)) for v in per)
        print(f"{name:13s} {'edit dist':9s} " + " ".join(f"{m:7.2f}" for m in means) + f"  {strict}/{len(per)}")
    if args.views:
        ssim_on_views(data, args.views)
    bias_field_span()
    return 0


def bias_field_span(seeds: int = 20) -> list[float]:
    """Median over ``seeds`` draws of the bias field's intensity span per level: the 99th over the 1st
    percentile of the multiplicative field, read off a flat 256 px image (value 10 of a 0-255 range, so that
    the field is not clipped) away from its 5-pixel border."""
    flat = np.full((1, 256, 256), 10.0, dtype=np.float32)
    flat[0, 0, 0], flat[0, -1, -1] = 0.0, 255.0  # the range the noise works in
    spans = []
    for s in range(1, 6):
        fields = [get_noise("bias_field").apply(flat, s, seed=seed)[0, 5:-5, 5:-5] / 10.0 for seed in range(seeds)]
        spans.append(float(np.median([np.percentile(f, 99) / np.percentile(f, 1) for f in fields])))
    print("\nbias_field: intensity span of the field (p99 / p1, median of", seeds, "draws):",
          " ".join(f"S{s}: {v:.2f}" for s, v in enumerate(spans, 1)))
    return spans


def _channel_first(view: np.ndarray) -> np.ndarray:
    return view[None] if view.ndim == 2 else np.moveaxis(view, -1, 0)


def ssim_on_views(data: Path, n_views: int) -> dict[str, np.ndarray]:
    """Median SSIM per level of every image noise on ``n_views`` training views (every 2nd image of each
    dataset's train split from the start, half per dataset), each with its own seed; printed beside the median
    of the other image noises at the same level."""
    half = max(1, n_views // 2)
    paths = [p for spec in (f"slake:{data / 'slake'}", f"vqa-rad:{data / 'vqa_rad'}")
             for p in dataset_images(spec, ("train",))[: 2 * half : 2]]
    views = [_channel_first(np.asarray(load_view(p, 256))) for p in paths]
    medians = {
        name: np.median([[ssim(v, get_noise(name).apply(v, s, seed=i)) for s in range(1, 6)]
                         for i, v in enumerate(views)], axis=0)
        for name in list_noises("image")
    }
    print(f"\nmedian SSIM on {len(views)} training views at 256 px; 'others': the median over the other image noises")
    print(f"{'noise':13s} " + " ".join(f"{'S' + str(s):>7s}" for s in range(1, 6)) + "   others (S1..S5)")
    for name, values in medians.items():
        others = np.median([v for n, v in medians.items() if n != name], axis=0)
        print(f"{name:13s} " + " ".join(f"{m:7.3f}" for m in values) + "   " + " ".join(f"{m:.3f}" for m in others))
    return medians


if __name__ == "__main__":
    sys.exit(main())

"""Fidelity per severity of every noise: mean PSNR on real images, mean character edit distance on real
questions (SLAKE + VQA-RAD, every 25th question), with the share of inputs whose fidelity worsens
strictly from level 1 to 5.

    python bench/noise_fidelity.py --data ../shared/data
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

from monai_imc.imageio import read_image
from monai_imc.noise import get_noise, list_noises
from monai_imc.noise.metrics import edit_distance, psnr
from monai_imc.noise.preview import shrink

DICOM = ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm", "MR2_UNCI.dcm", "emri_small.dcm")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--size", type=int, default=512, help="shrink images to this longest side first")
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
    for name in list_noises("text"):
        per = [[edit_distance(q, get_noise(name).apply(q, s, seed=i)) for s in range(1, 6)] for i, q in enumerate(questions)]
        means = np.mean(per, axis=0)
        strict = sum(all(a < b for a, b in itertools.pairwise(v)) for v in per)
        print(f"{name:13s} {'edit dist':9s} " + " ".join(f"{m:7.2f}" for m in means) + f"  {strict}/{len(per)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

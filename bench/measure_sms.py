"""Measure SMS on the VQA test questions: a thin wrapper over ``monai-imc bench``.

Runs ``monai-imc bench --methods none,sms,spellcheck,repass`` on SLAKE test and VQA-RAD test with the clean
questions and every text noise at ``--severities`` (the image is the clean one): the plain model, the SMS
refiner (the bundle's settings), the spell-check baseline (:mod:`monai_imc.bench.spellcheck`, same
vocabulary, no model call) and the one-call re-pass (the model asked once to fix the question, its reply
used as is). Bench's ``results.md`` holds the SMS table per dataset: recovery per noise (and pooled over
the text noises), false edits (clean questions edited), guard refusals and violations, median and maximum
calls per question; every edited question is in ``cache.jsonl`` (``edited``, ``question``).

    python bench/measure_sms.py --bundle bundles/monai_imc_vqa --data ../shared/data --severities 3 \\
        --out results/sms

is ``monai-imc bench --model bundles/monai_imc_vqa --dataset slake:../shared/data/slake --dataset
vqa-rad:../shared/data/vqa_rad --noises <the text noises> --severities 3 --methods none,sms,spellcheck,repass
--out results/sms``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monai_imc.cli import main as monai_imc
from monai_imc.noise import list_noises

SPECS = {"slake": "slake", "vqa_rad": "vqa-rad"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="a MONAI bundle: its model and its refiner settings")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--datasets", default="slake,vqa_rad")
    p.add_argument("--noises", default="all", help="all (every text noise) or comma-separated text noises")
    p.add_argument("--severities", default="3")
    p.add_argument(
        "--sample",
        "--limit",
        type=int,
        default=0,
        help="at most this many questions per dataset (bench's --limit: a seeded subset; 0: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="the benchmark seed (noise draws, the subset)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    noises = list_noises("text") if args.noises == "all" else args.noises.split(",")
    argv_ = ["bench", "--model", args.bundle]
    for name in args.datasets.split(","):
        argv_ += ["--dataset", f"{SPECS[name]}:{Path(args.data) / name}"]
    argv_ += [
        "--noises",
        ",".join(noises),
        "--severities",
        args.severities,
        "--methods",
        "none,sms,spellcheck,repass",
        "--seed",
        str(args.seed),
        "--out",
        args.out,
    ]
    return monai_imc(argv_ + (["--limit", str(args.sample)] if args.sample else []))


if __name__ == "__main__":
    sys.exit(main())

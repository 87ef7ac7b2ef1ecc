"""Measure perceive + PDC on the VQA test splits: a thin wrapper over ``monai-imc bench``.

Runs ``monai-imc bench --methods none,pdc,pdc-oracle`` on SLAKE test and VQA-RAD test, clean and under every
noise of the bank (plus ``--extra-noises``, noises the bank was built without) at ``--severities``: the
plain model, PDC with the perceived noise and the oracle PDC told the true noise and severity (to separate
perceiver errors from map quality). The tables (closed accuracy and recovery per noise, the perceiver's
verdict right and images calibrated) are bench's ``results.md``; this wrapper adds the perceiver's
confusion matrix (``confusion.png``, from the cached records) under ``--out``. The calibration variant is
the pipeline's (a bundle's ``configs/inference.json``; ``ridge`` for a checkpoint folder and ``--bank``).

    python bench/measure_pdc.py --model bundles/monai_imc_vqa/models/reference-vlm \\
        --bank bundles/monai_imc_vqa/models/prototype-bank --data ../shared/data --severities 3 --out results/pdc

is ``monai-imc bench --model ... --bank ... --dataset slake:../shared/data/slake --dataset
vqa-rad:../shared/data/vqa_rad --noises <the bank's noises> --severities 3 --methods none,pdc,pdc-oracle
--out results/pdc`` followed by the confusion matrix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from monai_imc.atomic import atomic_output
from monai_imc.bench.records import read_records
from monai_imc.cli import main as monai_imc
from monai_imc.prototypes import PrototypeBank

SPECS = {"slake": "slake", "vqa_rad": "vqa-rad"}


def bench_argv(args: argparse.Namespace, noises: list[str]) -> list[str]:
    """The ``monai-imc bench`` command line of this measurement."""
    argv = ["bench", "--model", args.model, "--bank", args.bank]
    for name in args.datasets.split(","):
        argv += ["--dataset", f"{SPECS[name]}:{Path(args.data) / name}"]
    argv += [
        "--noises",
        ",".join(noises),
        "--severities",
        args.severities,
        "--methods",
        "none,pdc,pdc-oracle",
        "--image-size",
        str(args.size),
        "--seed",
        str(args.seed),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--out",
        args.out,
    ]
    return argv + (["--limit", str(args.limit)] if args.limit else [])


def write_confusion(out: Path, noises: list[str]) -> Path:
    """The perceiver's confusion matrix (true condition x perceived noise, rows normalised) of the cached
    ``pdc`` records, all severities together."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["clean", *noises]
    matrix = np.zeros((len(labels), len(labels)))
    for r in read_records(out / "cache.jsonl"):
        if r.method == "pdc" and r.noise in labels and r.perceived in labels:
            matrix[labels.index(r.noise), labels.index(r.perceived)] += 1
    matrix /= np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for a in range(len(labels)):
        for b in range(len(labels)):
            ax.text(b, a, f"{matrix[a, b]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("perceived")
    ax.set_ylabel("true")
    fig.tight_layout()
    path = out / "confusion.png"
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--bank", required=True)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--datasets", default="slake,vqa_rad")
    p.add_argument("--severities", default="3")
    p.add_argument("--size", type=int, default=256, help="longest side of the images before noise")
    p.add_argument(
        "--limit", type=int, default=0, help="at most this many questions per dataset (bench's --limit)"
    )
    p.add_argument("--seed", type=int, default=0, help="the benchmark seed (noise draws; bench's default)")
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--extra-noises", default="", help="image noises to test that the bank was built without")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    bank_noises = list(PrototypeBank.load(args.bank).noises)
    noises = bank_noises + [n for n in args.extra_noises.split(",") if n and n not in bank_noises]
    code = monai_imc(bench_argv(args, noises))
    if code == 0:
        print(f"wrote {write_confusion(Path(args.out), noises)}")
    return code


if __name__ == "__main__":
    sys.exit(main())

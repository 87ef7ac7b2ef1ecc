"""Choose PDC's strengths on the model's own validation answers and write them into its prototype bank.

Each perceived noise's row of the bank's strengths (chosen at build time by token distance) is scaled by the
factor of the grid whose answers score best on the validation split (:mod:`monai_imc.bench.pdc_strength`),
with the pipeline run as ``imc+restore`` runs it. Validation only; the test split is never read::

    OMP_NUM_THREADS=1 python bench/choose_pdc_strength.py --model bundles/monai_imc_vqa \\
        --dataset slake:../shared/data/slake --dataset vqa-rad:../shared/data/vqa_rad \\
        --out results/pdc-strength --write-bank bundles/monai_imc_vqa/models/prototype-bank

Writes ``choice.json`` and ``choice.png`` (score by scale, per perceived noise) into ``--out``; with
``--write-bank`` the bank with the scaled strengths (the manifest's ``choices.strength_scales`` records them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from monai_imc.atomic import atomic_output
from monai_imc.bench.benchmark import VALIDATION_SPLIT, build_runner
from monai_imc.bench.datasets import stratified_subset
from monai_imc.bench.pdc_strength import (
    DEFAULT_SCALES,
    StrengthChoice,
    choose_strengths,
    with_scaled_strengths,
)
from monai_imc.bench.settings import BenchSettings
from monai_imc.data import load_dataset
from monai_imc.noise.registry import parse_noise_list, parse_severities

IMAGE_NOISES = "bias_field,blur,ghosting,gibbs,jpeg,low_dose,motion,rician,spike"


def plot(choice: StrengthChoice, path: Path) -> None:
    """Pooled score by scale, one line per perceived noise, the chosen scale marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for noise, by_scale in choice.scores.items():
        xs = [float(s) for s in by_scale]
        ys = list(by_scale.values())
        line = ax.plot(xs, ys, marker="o", label=f"{noise} (n={choice.counts[noise]})")[0]
        ax.plot([choice.chosen[noise]], [by_scale[str(choice.chosen[noise])]], marker="*", markersize=14,
                color=line.get_color())
    ax.set_xlabel("scale of the bank's strengths (0: PDC off)")
    ax.set_ylabel("validation score, % (closed acc. / open recall)")
    ax.set_title("PDC strength by the model's answers, per perceived noise (star: chosen)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundles/monai_imc_vqa", help="a bundle (its model and bank)")
    parser.add_argument("--dataset", action="append", required=True, help="slake:PATH / vqa-rad:PATH (repeat)")
    parser.add_argument("--noises", default=IMAGE_NOISES)
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--scales", default=",".join(str(s) for s in DEFAULT_SCALES))
    parser.add_argument("--out", required=True, help="folder for choice.json and choice.png")
    parser.add_argument("--write-bank", default=None, help="write the bank with the chosen scales here")
    parser.add_argument("--from-level", type=int, default=1,
                        help="never calibrate images perceived below this severity (their strengths 0)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions a dataset (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = BenchSettings(model=args.model, datasets=args.dataset, out=out, split=VALIDATION_SPLIT,
                             methods=["imc+restore"], seed=args.seed, max_new_tokens=12)
    rows = [r for spec in args.dataset
            for r in stratified_subset(load_dataset(spec, VALIDATION_SPLIT), args.limit, args.seed)]
    runner, loaded, _ = build_runner(settings, cache=False, image_pool=rows)
    if loaded.bank is None:
        print(f"{args.model}: no prototype bank", file=sys.stderr)
        return 2
    start = time.perf_counter()
    choice = choose_strengths(runner, rows, parse_noise_list(args.noises), parse_severities(args.severities),
                              [float(s) for s in args.scales.split(",")],
                              progress=lambda line: print(f"[{time.perf_counter() - start:6.0f} s] {line}",
                                                          flush=True), from_level=args.from_level)
    record = {**choice.to_dict(), "model": str(args.model), "bank_sha256": loaded.bank.bank_hash,
              "datasets": args.dataset, "split": VALIDATION_SPLIT, "seed": args.seed,
              "seconds": round(time.perf_counter() - start, 1),
              "command": "python bench/choose_pdc_strength.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    with atomic_output(out / "choice.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    plot(choice, out / "choice.png")
    print("| perceived noise | question-conditions | " + " | ".join(f"x{s:g}" for s in choice.scales) + " | chosen |")
    print("|---|---:|" + "---:|" * len(choice.scales) + "---|")
    for noise, by_scale in choice.scores.items():
        cells = " | ".join(f"{by_scale.get(str(s), float('nan')):.2f}" for s in choice.scales)
        print(f"| {noise} | {choice.counts[noise]} | {cells} | x{choice.chosen[noise]:g} |")
    if args.write_bank:
        note = {"criterion": "validation answers of the model (closed accuracy and open token recall, pooled per "
                             "perceived noise; imc+restore)", "split": VALIDATION_SPLIT,
                "questions": choice.questions, "scales_tried": choice.scales, "model": str(args.model),
                "bank_before": loaded.bank.bank_hash, "variant": runner.pipeline.variant}
        scaled = with_scaled_strengths(loaded.bank, choice.chosen, note, runner.pipeline.variant, args.from_level)
        scaled.save(args.write_bank)
        print(f"wrote the bank with the chosen strengths to {args.write_bank} ({scaled.bank_hash[:12]})")
    print(f"wrote {out / 'choice.json'}, {out / 'choice.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

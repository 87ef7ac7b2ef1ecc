"""What the image noises cost a model, by severity: the mean loss over the run's image noises against the
clean images, closed accuracy and open exact match, per dataset (reference_model.md's "Artifacts matter").

    python bench/severity_losses.py results/full9-image [--method none] [--per-noise]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from monai_imc.noise import get_noise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a monai-imc bench results folder")
    parser.add_argument("--method", default="none")
    parser.add_argument("--per-noise", action="store_true", help="also each noise's loss by severity")
    args = parser.parse_args(argv)
    rows = json.loads((Path(args.results) / "results.json").read_text(encoding="utf-8"))["rows"]
    rows = [r for r in rows if r["method"] == args.method]
    clean = {(r["dataset"], m): r[m] for r in rows if r["noise"] == "clean" for m in ("closed_acc", "open_acc")}
    losses: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_noise: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r["noise"] == "clean" or get_noise(r["noise"]).modality != "image":
            continue
        for m in ("closed_acc", "open_acc"):
            if r[m] is not None and clean.get((r["dataset"], m)) is not None:
                loss = clean[(r["dataset"], m)] - r[m]
                losses[(r["dataset"], m)][r["severity"]].append(loss)
                per_noise[(r["dataset"], m, r["noise"])][r["severity"]] = loss
    severities = sorted({s for v in losses.values() for s in v})
    names = {"closed_acc": "closed accuracy", "open_acc": "open exact match"}
    print(f"Mean loss over the image noises against the clean images (points), method {args.method}:\n")
    print("| | clean | " + " | ".join(f"sev {s}" for s in severities) + " |")
    print("|---|---|" + "---|" * len(severities))
    for (dataset, m), by_sev in sorted(losses.items()):
        cells = " | ".join(f"{sum(by_sev[s]) / len(by_sev[s]):.2f}" if by_sev.get(s) else "" for s in severities)
        print(f"| {dataset} {names[m]} | {clean[(dataset, m)]:.1f} | {cells} |")
    if args.per_noise:
        for (dataset, m, noise), by_sev in sorted(per_noise.items()):
            print(f"{dataset:8s} {names[m]:17s} {noise:11s} " + " ".join(f"{by_sev.get(s, float('nan')):6.1f}"
                                                                       for s in severities))
    return 0


if __name__ == "__main__":
    sys.exit(main())

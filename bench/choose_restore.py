"""Which perceiver-guided corrections the bundle switches on: chosen on a validation run of ``monai-imc bench``.

For every noise that has a correction (:data:`monai_imc.restore.CORRECTIONS`), the gain of ``imc+restore``
(restore the view the perceiver flagged, encode it again, then PDC) over ``pdc`` alone, pooled over the run's
datasets and severities, closed accuracy and open token recall, each question counted once (a closed
question's gain is its accuracy's, an open one's its recall's). A correction is chosen where the pooled gain
is above 0. Run it on the ``validate`` split, never on test::

    OMP_NUM_THREADS=1 monai-imc bench --model bundles/monai_imc_vqa --dataset slake:../shared/data/slake \\
        --dataset vqa-rad:../shared/data/vqa_rad --split validate \\
        --noises bias_field,blur,ghosting,gibbs,jpeg,low_dose,motion,rician,spike --severities 3,5 \\
        --methods none,pdc,imc+restore,restore --threads 1 --out results/val-restore
    python bench/choose_restore.py results/val-restore
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monai_imc.restore import CORRECTIONS


def pooled_gains(rows: list[dict], base: str = "pdc", method: str = "imc+restore") -> dict[str, dict[str, float]]:
    """Per noise: the pooled gain (points) of ``method`` over ``base`` and the questions it pools."""
    index = {(r["dataset"], r["noise"], r["severity"], r["method"]): r for r in rows}
    out: dict[str, dict[str, float]] = {}
    for (dataset, noise, severity, m), row in index.items():
        if m != method or noise not in CORRECTIONS:
            continue
        other = index.get((dataset, noise, severity, base))
        if other is None:
            continue
        cell = out.setdefault(noise, {"points": 0.0, "questions": 0.0})
        for metric, n in (("closed_acc", "closed_n"), ("open_recall", "open_n")):
            if row[metric] is not None and other[metric] is not None and row[n]:
                cell["points"] += (row[metric] - other[metric]) * row[n]
                cell["questions"] += row[n]
    return {
        noise: {"gain": round(c["points"] / c["questions"], 2) if c["questions"] else 0.0, "questions": c["questions"]}
        for noise, c in sorted(out.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a monai-imc bench results folder of the validate split")
    args = parser.parse_args(argv)
    result = json.loads((Path(args.results) / "results.json").read_text(encoding="utf-8"))
    split = result["config"].get("split")
    if split != "validate":
        print(f"{args.results}: a run of the {split!r} split; choose on 'validate' only", file=sys.stderr)
        return 2
    gains = pooled_gains(result["rows"])
    print("| noise | imc+restore - pdc (points, pooled) | question-conditions | chosen |")
    print("|---|---:|---:|---|")
    for noise, g in gains.items():
        print(f"| {noise} | {g['gain']:+.2f} | {int(g['questions'])} | {'yes' if g['gain'] > 0 else 'no'} |")
    chosen = [n for n, g in gains.items() if g["gain"] > 0]
    print(f"\nchosen corrections: {json.dumps(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

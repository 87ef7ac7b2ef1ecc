"""The reference model's seeds, side by side: mean and spread per arm, and the image's margin over the twin.

Reads the ``metrics.json`` of each run (``monai-imc train-reference`` writes them) of the model arm and of
the no-image twin arm, and prints the table of issue 14's targets (SLAKE closed accuracy, open exact
match, open token recall, modality questions, VQA-RAD, the test-time blank-image and shuffled-image
controls, training minutes): mean +- sample standard deviation over the seeds, and the margin of the
model over the twin (difference of the means; its spread is the two arms' spreads combined). With
``--plot`` it draws every seed's value per arm (PNG).

Usage::

    python bench/reference_seeds.py --model results/ref/model-s{0,1,2}-l2000 \\
        --twin results/ref/twin-s{0,1,2}-l2000 --plot docs/reference_model_runs/seeds-l2000.png
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["ROWS", "main", "summarise"]

#: (label, path into metrics.json, target or ``None``)
ROWS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("SLAKE test closed accuracy", ("slake_test", "closed_acc"), ">= 78; twin + 12"),
    ("SLAKE test open exact match", ("slake_test", "open_acc"), ">= 70; twin + 25"),
    ("SLAKE test open token recall", ("slake_test", "open_recall"), None),
    ("SLAKE modality questions", ("slake_test", "by_group", "Modality", "acc"), ">= 95"),
    ("VQA-RAD test closed accuracy", ("vqa_rad_test", "closed_acc"), "reported"),
    ("VQA-RAD test open exact match", ("vqa_rad_test", "open_acc"), "reported"),
    ("SLAKE closed, black image at test time", ("slake_test_blank_image", "closed_acc"), None),
    ("SLAKE open, black image at test time", ("slake_test_blank_image", "open_acc"), None),
    ("SLAKE closed, another test image", ("slake_test_shuffled_image", "closed_acc"), None),
    ("SLAKE open, another test image", ("slake_test_shuffled_image", "open_acc"), None),
    ("validation (held-out images) closed, saved weights", ("heldout_saved", "closed"), "chooses the recipe"),
    ("validation (held-out images) open, saved weights", ("heldout_saved", "open"), "chooses the recipe"),
    ("training minutes", ("train_minutes",), "<= 60"),
    ("kept step (held-out, by the run's --select)", ("best_step",), None),
)


def _get(metrics: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = metrics
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd


def _load(runs: list[Path]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        path = run / "metrics.json" if run.is_dir() else run
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no metrics.json (has the run finished?)")
        metrics = json.loads(path.read_text())
        # the held-out (validation) scores of the weights the run saved: its averaged weights
        # (--select average), else its kept step's point on the held-out curve
        kept = [c for c in metrics.get("heldout_curve", []) if c.get("step") == metrics.get("best_step")]
        metrics["heldout_saved"] = metrics.get("heldout_average") or (kept[0] if kept else None)
        out.append(metrics)
    return out


def summarise(model: list[dict[str, Any]], twin: list[dict[str, Any]]) -> str:
    """The markdown table: per row the model's and the twin's mean +- sd (seeds) and the margin."""
    seeds = lambda runs: ", ".join(str(m.get("seed")) for m in runs)  # noqa: E731
    lines = [
        f"| | model (seeds {seeds(model)}) | twin, no image (seeds {seeds(twin) or '-'}) | margin | target |",
        "|---|---|---|---|---|",
    ]
    for label, path, target in ROWS:
        cells = []
        stats = []
        for runs in (model, twin):
            values = [v for v in (_get(m, path) for m in runs) if v is not None]
            if not values:
                cells.append("-")
                stats.append(None)
                continue
            mean, sd = _stats(values)
            stats.append((mean, sd, len(values)))
            cells.append(f"{mean:.2f} +- {sd:.2f}" if len(values) > 1 else f"{mean:.2f}")
        margin = "-"
        if stats[0] and stats[1] and "minutes" not in label and "step" not in label and "validation" not in label:
            (m1, s1, _), (m2, s2, _) = stats[0], stats[1]
            margin = f"{m1 - m2:+.2f} +- {math.hypot(s1, s2):.2f}"
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {margin} | {target or ''} |")
    return "\n".join(lines)


def _plot(model: list[dict[str, Any]], twin: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in ROWS if "minutes" not in r[0] and "step" not in r[0] and "validation" not in r[0]]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for offset, (runs, name, colour) in enumerate(((model, "model", "C0"), (twin, "twin (no image)", "C1"))):
        for i, (_label, key, _t) in enumerate(shown):
            values = [v for v in (_get(m, key) for m in runs) if v is not None]
            if not values:
                continue
            x = i + (offset - 0.5) * 0.3
            ax.bar(x, sum(values) / len(values), width=0.28, color=colour, alpha=0.5, label=name if i == 0 else None)
            ax.scatter([x] * len(values), values, color=colour, s=12, zorder=3)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([r[0].replace("SLAKE ", "").replace(" at test time", "") for r in shown], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("reference model: every seed (dots) and the mean (bars)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Print the table (and draw the PNG with ``--plot``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", type=Path, required=True, help="run folders (or metrics.json) of the model arm")
    parser.add_argument("--twin", nargs="*", type=Path, default=[], help="run folders of the no-image twin")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of every seed here")
    args = parser.parse_args(argv)
    model, twin = _load(args.model), _load(args.twin)
    print(summarise(model, twin))
    if args.plot:
        _plot(model, twin, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

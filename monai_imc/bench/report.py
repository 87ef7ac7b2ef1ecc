"""Benchmark metrics and reports: results.json, results.csv, results.md and PNG plots."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_imc.atomic import atomic_output
from monai_imc.bench.runner import BenchRecord, iter_groups

__all__ = ["summarize", "write_report"]


def _pct(values: list[float]) -> float | None:
    return round(100.0 * sum(values) / len(values), 2) if values else None


def summarize(records: Sequence[BenchRecord]) -> list[dict[str, Any]]:
    """One row per (dataset, noise, severity, method): closed accuracy, open exact match and recall, the
    relative drop from clean (plain model) and the recovery ratio (method - noisy) / (clean - noisy), and
    how often the perceiver named the condition's noise (methods that perceive)."""
    rows = []
    for (dataset, noise, severity, method), group in iter_groups(records):
        closed = [float(r.correct) for r in group if r.closed]
        opened = [r for r in group if not r.closed]
        perceived = [r.perceived for r in group if r.perceived is not None]
        rows.append({
            "dataset": dataset, "noise": noise, "severity": severity, "method": method,
            "closed_acc": _pct(closed), "closed_n": len(closed),
            "open_acc": _pct([float(r.correct) for r in opened]), "open_recall": _pct([r.recall for r in opened]),
            "open_n": len(opened),
            "perceiver_right": _pct([float(p == noise) for p in perceived]) if perceived else None,
            "mean_calls": round(sum(r.calls for r in group) / len(group), 2),
        })
    index = {(r["dataset"], r["noise"], r["severity"], r["method"]): r for r in rows}
    for r in rows:
        clean = index.get((r["dataset"], "clean", 0, "none"), {}).get("closed_acc")
        noisy = index.get((r["dataset"], r["noise"], r["severity"], "none"), {}).get("closed_acc")
        r["relative_drop"] = (round((clean - noisy) / clean, 4) if clean and noisy is not None and r["noise"] != "clean"
                              else None)
        lost = (clean - noisy) if clean is not None and noisy is not None else 0.0
        r["recovery"] = (round((r["closed_acc"] - noisy) / lost, 3)
                         if r["closed_acc"] is not None and abs(lost) > 1e-9 and r["method"] != "none" else None)
    return rows


def write_report(records: Sequence[BenchRecord], out: str | Path, config: dict[str, Any]) -> dict[str, Path]:
    """Write results.json, results.csv, results.md and accuracy_vs_severity.png / methods.png into ``out``."""
    out = Path(out)
    rows = summarize(records)
    paths = {name: out / name for name in ("results.json", "results.csv", "results.md")}
    with atomic_output(paths["results.json"]) as tmp:
        tmp.write_text(json.dumps({"config": config, "rows": rows}, indent=2))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["dataset"])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(paths["results.csv"]) as tmp:
        tmp.write_text(buffer.getvalue())
    with atomic_output(paths["results.md"]) as tmp:
        tmp.write_text(_markdown(rows, config))
    paths.update(_plots(rows, out))
    return paths


def _markdown(rows: list[dict[str, Any]], config: dict[str, Any]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"Command: `{config.get('command', '')}`", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        lines += [f"## {dataset}: closed-ended accuracy (%), recovery in brackets", "",
                  "| noise | severity | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
        conds = dict.fromkeys((r["noise"], r["severity"]) for r in rows if r["dataset"] == dataset)
        for noise, severity in conds:
            cells = []
            for m in methods:
                match = [r for r in rows if (r["dataset"], r["noise"], r["severity"], r["method"]) ==
                         (dataset, noise, severity, m)]
                if not match or match[0]["closed_acc"] is None:
                    cells.append("")
                    continue
                rec = match[0]["recovery"]
                cells.append(f"{match[0]['closed_acc']:.1f}" + (f" ({rec:+.2f})" if rec is not None else ""))
            lines.append(f"| {noise} | {severity or ''} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _plots(rows: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    noises = [n for n in dict.fromkeys(r["noise"] for r in rows) if n != "clean"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if noises:
        cols = min(4, len(noises))
        fig, axes = plt.subplots((len(noises) + cols - 1) // cols, cols, figsize=(4 * cols, 3 * ((len(noises) + cols - 1) // cols)),
                                 squeeze=False)
        for ax, noise in zip(axes.flat, noises):
            for m in methods:
                pts = sorted((r["severity"], r["closed_acc"]) for r in rows
                             if r["noise"] == noise and r["method"] == m and r["closed_acc"] is not None)
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=m)
            ax.set_title(noise)
            ax.set_xlabel("severity")
            ax.set_ylabel("closed acc (%)")
        for ax in list(axes.flat)[len(noises):]:
            ax.axis("off")
        if axes.flat[0].get_legend_handles_labels()[0]:
            axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        paths["accuracy_vs_severity.png"] = out / "accuracy_vs_severity.png"
        with atomic_output(paths["accuracy_vs_severity.png"]) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    means = [[r["closed_acc"] for r in rows if r["method"] == m and r["noise"] != "clean" and r["closed_acc"] is not None]
             for m in methods]
    ax.bar(methods, [sum(v) / len(v) if v else 0 for v in means])
    ax.set_ylabel("mean closed acc over noisy conditions (%)")
    fig.tight_layout()
    paths["methods.png"] = out / "methods.png"
    with atomic_output(paths["methods.png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return paths

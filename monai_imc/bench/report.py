"""Benchmark metrics and reports: results.json, results.csv, results.md and PNG plots.

Metrics per (dataset, noise, severity, method), see ``docs/benchmark.md``:

- ``closed_acc``: closed-ended accuracy (%), exact match after normalisation;
- ``open_acc`` / ``open_recall``: open-ended exact match and token recall of the reference (%);
- ``relative_drop``: (clean - noisy) / clean of the method's closed accuracy, clean being the same
  method's clean accuracy (for ``none``: the plain model's drop);
- ``recovery``: (noisy+method - noisy) / (clean - noisy), with noisy and clean from ``none``; 1 means the
  method gave back all that the noise took, 0 nothing, < 0 it made things worse; empty where the noise
  took less than one closed question's worth;
- ``perceiver_right``: how often the perceiver's verdict was right (image noises: the most likely perceived
  noise is the true one; clean images and text noises: perceived clean), for the methods that perceive;
- ``calibrated``: how often PDC changed the features (the gate flagged the image), same methods;
- ``confidence`` and ``calibration_gap``: mean probability the decoder gave its closed answers (%) and
  that minus closed accuracy (points), where the model reports answer probabilities; a gap growing
  under noise is MedQ-Deg's calibration shift (the model stays sure while it gets worse);
- ``ece``: expected calibration error of the closed answers (points, 15 equal-width bins;
  :mod:`monai_imc.bench.calibration_error`), same condition; one reliability diagram per method.

``results.md`` also holds the SMS table of the text methods (:mod:`monai_imc.bench.sms_table`); the
breakdowns per question type and modality x body part are :mod:`monai_imc.bench.breakdown`'s.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from monai_imc.atomic import atomic_output
from monai_imc.bench.calibration_error import expected_calibration_error, write_reliability_diagrams
from monai_imc.bench.perceiver_report import perceiver_markdown, perceiver_summary, write_perceiver_report
from monai_imc.bench.records import BenchRecord, iter_groups
from monai_imc.bench.sms_table import sms_markdown, sms_rows
from monai_imc.noise import get_noise
from monai_imc.noise.local import base_noise

__all__ = ["summarize", "write_report"]


def _pct(values: list[float]) -> float | None:
    return round(100.0 * sum(values) / len(values), 2) if values else None


def _ece(closed: list[BenchRecord]) -> float | None:
    ece = expected_calibration_error([float(r.confidence or 0.0) for r in closed], [r.correct for r in closed])
    return round(100.0 * ece, 2) if ece is not None else None


def _expected_perception(noise: str) -> str:
    return base_noise(noise) if noise != "clean" and get_noise(noise).modality == "image" else "clean"


def summarize(records: Sequence[BenchRecord]) -> list[dict[str, Any]]:
    """One row per (dataset, noise, severity, method) with the metrics of the module docstring."""
    rows = []
    for (dataset, noise, severity, method), group in iter_groups(records):
        closed = [r for r in group if r.closed]
        opened = [r for r in group if not r.closed]
        perceived = [r.perceived for r in group if r.perceived is not None]
        gated = [float(r.calibrated) for r in group if r.calibrated is not None]
        confidences = [r.confidence for r in closed if r.confidence is not None]
        closed_acc = _pct([float(r.correct) for r in closed])
        confidence = _pct(confidences) if confidences and len(confidences) == len(closed) else None
        rows.append({
            "dataset": dataset, "noise": noise, "severity": severity, "method": method,
            "closed_acc": closed_acc, "closed_n": len(closed),
            "open_acc": _pct([float(r.correct) for r in opened]), "open_recall": _pct([r.recall for r in opened]),
            "open_n": len(opened),
            "perceiver_right": (_pct([float(p == _expected_perception(noise)) for p in perceived])
                                if perceived else None),
            "calibrated": _pct(gated) if gated else None,
            "confidence": confidence,
            "calibration_gap": (round(confidence - closed_acc, 2)
                                if confidence is not None and closed_acc is not None else None),
            "mean_calls": round(sum(r.calls for r in group) / len(group), 2),
            "ece": _ece(closed) if confidence is not None else None,
        })
    index = {(r["dataset"], r["noise"], r["severity"], r["method"]): r for r in rows}
    for r in rows:
        own_clean = index.get((r["dataset"], "clean", 0, r["method"]), {}).get("closed_acc")
        clean = index.get((r["dataset"], "clean", 0, "none"), {}).get("closed_acc")
        noisy = index.get((r["dataset"], r["noise"], r["severity"], "none"), {}).get("closed_acc")
        r["relative_drop"] = (round((own_clean - r["closed_acc"]) / own_clean, 4)
                              if own_clean and r["closed_acc"] is not None and r["noise"] != "clean" else None)
        lost = (clean - noisy) if clean is not None and noisy is not None else 0.0
        one_question = 100.0 / r["closed_n"] if r["closed_n"] else 100.0
        r["recovery"] = (round((r["closed_acc"] - noisy) / lost, 3)
                         if r["closed_acc"] is not None and noisy is not None and lost >= one_question - 1e-9
                         and r["method"] != "none" and r["noise"] != "clean" else None)
    return rows


def write_report(
    records: Sequence[BenchRecord], out: str | Path, config: dict[str, Any], seen: Collection[str] | None = None
) -> dict[str, Path]:
    """Write results.json, results.csv, results.md, accuracy_vs_severity.png (closed accuracy, mean over the
    datasets), ``accuracy_vs_severity_<dataset>.png`` (closed accuracy and open exact match), methods.png,
    ``reliability_<method>.png`` and, where a method perceives, the perceiver report
    (:mod:`monai_imc.bench.perceiver_report`: ``perceiver.json``, ``perceiver_confusion.png``) into ``out``.

    Args:
        records: every record of the run.
        out: the results folder.
        config: what the run was (command, model, datasets, denoise choice, cost ...), kept in results.json.
        seen: image keys the perceiver report leaves out (:func:`~monai_imc.bench.perceiver_report.perceiver_summary`).

    Returns:
        file name -> path of what was written.
    """
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
    present = {r["method"] for r in rows}
    methods = [m for m in config.get("methods", []) if m in present] or sorted(present)
    perceived = perceiver_summary(records, methods, seen)
    perceiver = perceiver_markdown(perceived)
    with atomic_output(paths["results.md"]) as tmp:
        tmp.write_text(markdown(rows, config, sms_rows(records, rows)) + ("\n\n" + "\n".join(perceiver) if perceiver else ""))
    paths.update(write_perceiver_report(perceived, out))
    paths.update(_plots(rows, out, methods))
    paths.update(write_reliability_diagrams(records, out, methods))
    return paths


def _cell(row: dict[str, Any] | None, metric: str, extra: str | None = None) -> str:
    if row is None or row.get(metric) is None:
        return ""
    text = f"{row[metric]:.1f}"
    if extra and row.get(extra) is not None:
        text += f" ({row[extra]:+.2f})"
    return text


def _ordered_conditions(rows: list[dict[str, Any]], dataset: str | None = None) -> list[tuple[str, int]]:
    """Clean first, then image noises, then text noises, each by name and severity."""
    conds = {(r["noise"], r["severity"]) for r in rows if dataset is None or r["dataset"] == dataset}
    return sorted(conds, key=lambda c: (c[0] != "clean", c[0] != "clean" and get_noise(c[0]).modality == "text",
                                        c[0], c[1]))


def _table(rows: list[dict[str, Any]], dataset: str, methods: list[str], metric: str,
           extra: str | None = None) -> list[str]:
    index = {(r["noise"], r["severity"], r["method"]): r for r in rows if r["dataset"] == dataset}
    conds = _ordered_conditions(rows, dataset)
    lines = ["| noise | sev | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for noise, severity in conds:
        cells = [_cell(index.get((noise, severity, m)), metric, extra) for m in methods]
        lines.append(f"| {noise} | {severity or ''} | " + " | ".join(cells) + " |")
    for modality in ("image", "text"):
        group = [(n, s) for n, s in conds if n != "clean" and get_noise(n).modality == modality]
        if not group:
            continue
        cells = []
        for m in methods:
            values = [index[(n, s, m)][metric] for n, s in group
                      if (n, s, m) in index and index[(n, s, m)][metric] is not None]
            cells.append(f"**{sum(values) / len(values):.1f}**" if values else "")
        lines.append(f"| **mean, {modality} noises** | | " + " | ".join(cells) + " |")
    return lines + [""]


def markdown(rows: list[dict[str, Any]], config: dict[str, Any], sms: list[dict[str, Any]] | None = None) -> str:
    """The paper-style tables of a run: per dataset, rows noise, columns method; ``sms``: the rows of
    :func:`~monai_imc.bench.sms_table.sms_rows` for the SMS table."""
    present = {r["method"] for r in rows}
    methods = [m for m in config.get("methods", []) if m in present] or sorted(present)
    lines = [f"Command: `{config.get('command', '')}`", ""]
    choice = config.get("denoise")
    if choice:
        chosen_on = (f"; chosen on {choice['questions']} closed validation questions of {', '.join(choice['splits'])}"
                     if choice.get("questions") else "")
        lines += [f"Denoise filter: `{choice['name']}` ({choice['rule']}{chosen_on}).", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        sizes = next((r for r in rows if r["dataset"] == dataset and r["noise"] == "clean"), None)
        n = f" ({sizes['closed_n']} closed, {sizes['open_n']} open questions)" if sizes else ""
        lines += [f"## {dataset}{n}", "", "### Closed-ended accuracy (%), recovery ratio in brackets", ""]
        lines += _table(rows, dataset, methods, "closed_acc", "recovery")
        lines += ["### Open-ended token recall (%)", ""]
        lines += _table(rows, dataset, methods, "open_recall")
        perceiving = [m for m in methods if any(r["method"] == m and r["perceiver_right"] is not None for r in rows)]
        if perceiving:
            lines += ["### The perceiver: verdict right (%) and images calibrated by the gate (%)", ""]
            source = [r for r in rows if r["method"] == perceiving[0]]
            columns = [{**r, "method": "perceiver right", "value": r["perceiver_right"]} for r in source]
            columns += [{**r, "method": "calibrated", "value": r["calibrated"]} for r in source]
            lines += _table(columns, dataset, ["perceiver right", "calibrated"], "value")
        if any(r["calibration_gap"] is not None for r in rows if r["dataset"] == dataset):
            lines += ["### Calibration gap: mean answer probability - closed accuracy (points)", ""]
            lines += _table(rows, dataset, methods, "calibration_gap")
            lines += ["### Expected calibration error of the closed answers (points, 15 bins)", ""]
            lines += _table(rows, dataset, methods, "ece")
        if sms is not None:
            lines += sms_markdown(sms, dataset, methods)
    return "\n".join(lines)


#: The answer metrics drawn against severity: their names in panel titles (axis labels add " (%)").
_SEVERITY_METRICS = {"closed_acc": "closed acc", "open_acc": "open exact match"}


def _severity_curves(ax: Any, rows: list[dict[str, Any]], methods: list[str], noise: str, metric: str) -> None:
    """Draw ``metric`` against severity (0 = clean) for each method on one noise, averaging what ``rows`` hold."""
    for k, m in enumerate(methods):
        by_sev: dict[int, list[float]] = {}
        for r in rows:
            if r["method"] == m and r[metric] is not None and (r["noise"] == noise or r["noise"] == "clean"):
                by_sev.setdefault(r["severity"], []).append(r[metric])
        pts = sorted((s, sum(v) / len(v)) for s, v in by_sev.items())  # severity 0: clean
        if pts:  # methods that tie overlap: distinct markers and dashes keep each visible
            ax.plot(*zip(*pts), marker="os^vDxP*"[k % 8], linestyle=["-", "--", ":", "-."][k % 4],
                    markersize=7 - 0.6 * (k % 5), label=m, alpha=0.85)
    ax.set_xticks(sorted({0} | {r["severity"] for r in rows if r["noise"] == noise}))
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel(f"{_SEVERITY_METRICS[metric]} (%)")


def _save_severity_figure(fig: Any, axes: Any, title: str, path: Path) -> None:
    """Title, one legend for all panels, an atomic PNG write, and the figure closed."""
    import matplotlib.pyplot as plt

    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / fig.get_figheight()))  # room for the title and legend
    if handles:
        fig.legend(handles, labels, loc="upper right", ncol=len(labels), fontsize=8, frameon=False)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _plots(rows: list[dict[str, Any]], out: Path, methods: list[str]) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    noises = list(dict.fromkeys(n for n, _ in _ordered_conditions(rows) if n != "clean"))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    if noises:
        cols = min(4, len(noises))
        n_rows = (len(noises) + cols - 1) // cols
        fig, axes = plt.subplots(n_rows, cols, figsize=(4 * cols, 3 * n_rows), squeeze=False)
        for ax, noise in zip(axes.flat, noises):
            _severity_curves(ax, rows, methods, noise, "closed_acc")
            ax.set_title(noise)
        for ax in list(axes.flat)[len(noises):]:
            ax.axis("off")
        paths["accuracy_vs_severity.png"] = out / "accuracy_vs_severity.png"
        _save_severity_figure(fig, axes, "closed-ended accuracy vs severity (mean over datasets)",
                              paths["accuracy_vs_severity.png"])
        for dataset in datasets:  # one figure per dataset: closed accuracy and open exact match per noise
            own = [r for r in rows if r["dataset"] == dataset]
            metrics = [m for m in _SEVERITY_METRICS if any(r[m] is not None for r in own)]
            if not metrics:
                continue
            block = (len(noises) + cols - 1) // cols  # each metric a block of rows, the noises in reading order
            fig, axes = plt.subplots(block * len(metrics), cols, figsize=(4 * cols, 2.8 * block * len(metrics)),
                                     squeeze=False)
            for b, metric in enumerate(metrics):
                panels = list(axes[b * block:(b + 1) * block].flat)
                for ax, noise in zip(panels, noises):
                    _severity_curves(ax, own, methods, noise, metric)
                    ax.set_title(f"{noise}: {_SEVERITY_METRICS[metric]}", fontsize=10)
                for ax in panels[len(noises):]:
                    ax.axis("off")
            name = f"accuracy_vs_severity_{dataset}.png"
            paths[name] = out / name
            _save_severity_figure(fig, axes, f"{dataset}: accuracy vs severity", paths[name])
    conds = _ordered_conditions(rows)
    fig, axes = plt.subplots(1, len(datasets), figsize=(1.0 + 1.1 * len(methods) * len(datasets) + 1.5,
                                                         0.9 + 0.32 * len(conds)), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets):
        index = {(r["noise"], r["severity"], r["method"]): r["closed_acc"] for r in rows if r["dataset"] == dataset}
        grid = [[index.get((n, s, m)) for m in methods] for n, s in conds]
        values = [[v if v is not None else float("nan") for v in line] for line in grid]
        image = ax.imshow(values, cmap="viridis", aspect="auto", vmin=0, vmax=100)
        for i, line in enumerate(grid):
            for j, v in enumerate(line):
                if v is not None:
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 60 else "black")
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(conds)), [f"{n} {s}" if s else n for n, s in conds], fontsize=8)
        ax.set_title(f"{dataset}: closed acc (%)", fontsize=9)
    fig.colorbar(image, ax=list(axes.flat), shrink=0.8)
    paths["methods.png"] = out / "methods.png"
    with atomic_output(paths["methods.png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths

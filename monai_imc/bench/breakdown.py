"""Breakdowns of a benchmark run: every result cut per question type and per modality x body part.

Computed from the records alone (the cached JSONL), so ``monai-imc bench --report-only`` cuts a finished
run without answering again:

- ``question type``: SLAKE's ``content_type`` (Organ, Abnormality, Position ...), VQA-RAD's
  ``question_type`` (PRES, ABN, POS ...);
- ``modality x body part``: SLAKE's ``modality`` x ``location``; VQA-RAD has no modality field, so its
  groups are ``? x`` its organ.

Each group is summarised like the whole run (:func:`monai_imc.bench.report.summarize`): accuracy, and
recovery against the plain model's clean and noisy accuracy *within the group*. ``breakdowns.md`` gives,
per dataset and breakdown, an overview (closed accuracy clean / mean over image noises / mean over text
noises per method) and the closed-accuracy table of every group; ``breakdowns.csv`` every metric.
:func:`write_heatmap` draws the loss and the recovery per modality x noise.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monai_imc.atomic import atomic_output
from monai_imc.bench.records import BenchRecord
from monai_imc.bench.report import _table, summarize
from monai_imc.noise import get_noise
from monai_imc.optional import require

__all__ = ["BREAKDOWNS", "breakdown_rows", "write_breakdowns", "write_heatmap"]

#: The breakdowns: name -> the group of a record.
BREAKDOWNS: dict[str, Callable[[BenchRecord], str]] = {
    "question type": lambda r: r.question_type or "?",
    "modality x body part": lambda r: f"{r.modality or '?'} x {r.body_part or '?'}",
}
#: Methods left out of the heat map's recovery panels (controls, not defences).
_CONTROLS = ("none", "no-image", "shuffled-image")


def breakdown_rows(records: Sequence[BenchRecord], name: str) -> list[dict[str, Any]]:
    """The summary rows of every group of breakdown ``name``, each with ``breakdown`` and ``group``.

    Raises:
        KeyError: an unknown breakdown.
    """
    group_of = BREAKDOWNS[name]
    groups: dict[str, list[BenchRecord]] = {}
    for r in records:
        groups.setdefault(group_of(r), []).append(r)
    return [
        {"breakdown": name, "group": g, **row}
        for g, part in sorted(groups.items())
        for row in summarize(part)
    ]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _overview(rows: list[dict[str, Any]], dataset: str, methods: list[str]) -> list[str]:
    mine = [r for r in rows if r["dataset"] == dataset]
    groups = list(dict.fromkeys(r["group"] for r in mine))
    lines = [
        "| group | closed n | open n | " + " | ".join(methods) + " |",
        "|---|---|---|" + "---|" * len(methods),
    ]
    for g in groups:
        part = [r for r in mine if r["group"] == g]
        clean = next((r for r in part if r["noise"] == "clean"), part[0])
        cells = []
        for m in methods:
            values = {"clean": [], "image": [], "text": []}  # type: dict[str, list[float]]
            for r in part:
                if r["method"] != m or r["closed_acc"] is None:
                    continue
                kind = "clean" if r["noise"] == "clean" else get_noise(r["noise"]).modality
                values.setdefault(kind, []).append(r["closed_acc"])
            means = [_mean(values[k]) for k in ("clean", "image", "text")]
            cells.append(" / ".join("" if v is None else f"{v:.0f}" for v in means))
        lines.append(f"| {g} | {clean['closed_n']} | {clean['open_n']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_breakdowns(records: Sequence[BenchRecord], out: str | Path, methods: list[str]) -> dict[str, Path]:
    """Write ``breakdowns.md`` and ``breakdowns.csv`` into ``out``; returns file name -> path."""
    out = Path(out)
    rows = [row for name in BREAKDOWNS for row in breakdown_rows(records, name)]
    lines = [
        "# Breakdowns",
        "",
        (
            "Per question type and per modality x body part (`?`: the dataset has no such field). Recovery is "
            "computed within each group."
        ),
        "",
    ]
    for dataset in dict.fromkeys(r.dataset for r in records):
        lines += [f"## {dataset}", ""]
        for name in BREAKDOWNS:
            mine = [r for r in rows if r["breakdown"] == name]
            lines += [
                f"### Per {name}: closed accuracy (%), clean / mean over image noises / mean over text noises",
                "",
            ]
            lines += _overview(mine, dataset, methods)
            for g in dict.fromkeys(r["group"] for r in mine if r["dataset"] == dataset):
                part = [r for r in mine if r["group"] == g]
                lines += [f"#### {name} = {g}: closed accuracy (%), recovery ratio in brackets", ""]
                lines += _table(part, dataset, methods, "closed_acc", "recovery")
    paths = {"breakdowns.md": out / "breakdowns.md", "breakdowns.csv": out / "breakdowns.csv"}
    with atomic_output(paths["breakdowns.md"]) as tmp:
        tmp.write_text("\n".join(lines))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["breakdown"])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(paths["breakdowns.csv"]) as tmp:
        tmp.write_text(buffer.getvalue())
    return paths


def modality_noise_grid(
    records: Sequence[BenchRecord], methods: Sequence[str]
) -> tuple[list[str], list[str], dict[str, list[list[float]]]]:
    """The heat map's numbers: groups (``dataset modality``), noises, and per panel a groups x noises grid.

    Panel ``loss``: clean minus noisy closed accuracy of the plain model (points, mean over severities);
    panel ``recovery: <method>``: the points the method won back over the points lost (%, pooled over
    severities; NaN where the noise cost less than one question's worth).
    """
    groups: dict[str, list[BenchRecord]] = {}
    for r in records:
        groups.setdefault(f"{r.dataset} {r.modality or '(all)'}", []).append(r)
    noises = sorted(
        {r.noise for r in records if r.noise != "clean"}, key=lambda n: (get_noise(n).modality == "text", n)
    )
    panels = ["loss"] + [f"recovery: {m}" for m in methods if m not in _CONTROLS]
    grids: dict[str, list[list[float]]] = {p: [] for p in panels}
    names = sorted(groups)
    for g in names:
        index = {(s["noise"], s["severity"], s["method"]): s for s in summarize(groups[g])}
        clean = index.get(("clean", 0, "none"), {}).get("closed_acc")
        closed_n = index.get(("clean", 0, "none"), {}).get("closed_n") or 0
        for p in panels:
            line = []
            for n in noises:
                sevs = sorted(s for (noise, s, m) in index if noise == n and m == "none")
                plain = [index[(n, s, "none")]["closed_acc"] for s in sevs]
                if clean is None or any(v is None for v in plain) or not plain:
                    line.append(math.nan)
                    continue
                lost = sum(clean - v for v in plain)
                if p == "loss":
                    line.append(lost / len(plain))
                    continue
                m = p.split(": ", 1)[1]
                got = [index.get((n, s, m), {}).get("closed_acc") for s in sevs]
                if any(v is None for v in got) or not closed_n or lost < len(plain) * 100.0 / closed_n - 1e-9:
                    line.append(math.nan)
                else:
                    line.append(100.0 * sum(v - w for v, w in zip(got, plain)) / lost)  # type: ignore[operator]
            grids[p].append(line)
    return names, noises, grids


def write_heatmap(records: Sequence[BenchRecord], out: str | Path, methods: Sequence[str]) -> dict[str, Path]:
    """Write ``heatmap_modality_noise.png``: the loss and each defence's recovery per modality x noise.

    Raises:
        OptionalImportError: matplotlib (the ``bench`` extra) is missing.
    """
    require("matplotlib", extra="bench", purpose="the breakdown heat map")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, noises, grids = modality_noise_grid(records, methods)
    if not noises or not names:
        return {}
    fig, axes = plt.subplots(
        len(grids),
        1,
        figsize=(1.6 + 0.55 * len(noises), 0.9 + (0.35 * len(names) + 0.8) * len(grids)),
        squeeze=False,
    )
    for ax, (panel, grid) in zip(axes[:, 0], grids.items()):
        loss = panel == "loss"
        image = ax.imshow(
            grid,
            aspect="auto",
            cmap="Reds" if loss else "RdYlGn",
            vmin=0 if loss else -100,
            vmax=max(1.0, max((v for line in grid for v in line if not math.isnan(v)), default=1.0))
            if loss
            else 100,
        )
        for i, line in enumerate(grid):
            for j, v in enumerate(line):
                if not math.isnan(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(noises)), noises, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(
            "loss: clean - noisy closed acc of the plain model (points)"
            if loss
            else f"{panel} (% of the loss won back)",
            fontsize=8,
        )
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    path = Path(out) / "heatmap_modality_noise.png"
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return {path.name: path}

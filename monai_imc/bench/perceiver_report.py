"""The perceiver report of a benchmark run: how well the perceiver named each test image's artifact.

Read from the records of the first method of the run that perceives (``pdc``, ``imc``, ``restore`` ...: they
all perceive a view the same way, :meth:`monai_imc.pipeline.IMCPipeline.perceive` with the view), one
verdict per image and image condition (an image's questions share its view; a text noise leaves the image
clean). Per dataset and over all of them:

- ``type_right``: per image noise and severity, the share of images reported as ``artifact`` of the right
  noise type (a local variant counts as its wrapped noise); ``type_accuracy_severity_3_plus``: their mean
  over the noises and the severities >= 3 of the run;
- ``severity_within_1``: of the images typed right, the share whose perceived level is within one of the
  true one;
- ``clean_false_alarm`` and ``clean_not_assessable``: shares of the clean images reported as an artifact,
  and as not assessable; ``noisy_not_assessable``: of the noisy images at severity >= 3;
- ``confusion``: true condition (clean and each noise at severity >= 3) x reported (clean, each noise, not
  assessable), image counts; drawn as ``perceiver_confusion.png``.

Test images that are also in a training split of their dataset (VQA-RAD asks its test questions about
training images; a prototype bank may have been built from them) are left out and counted.

Records cached before the verdict was recorded carry none; the report then says so and counts nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from monai_imc.atomic import atomic_output
from monai_imc.bench.records import BenchRecord
from monai_imc.noise import get_noise
from monai_imc.noise.local import base_noise
from monai_imc.perceive import ARTIFACT, NOT_ASSESSABLE

__all__ = ["perceiver_markdown", "perceiver_summary", "write_perceiver_report"]

#: The severities from which type accuracy is the issue's target ("severity >= 3").
STRONG = 3


def _image_condition(record: BenchRecord) -> tuple[str, str, int]:
    """(image, image noise, severity): the view the record's answer was given on."""
    image = record.item.split("#", 1)[0]
    if record.noise != "clean" and get_noise(record.noise).modality == "image":
        return image, base_noise(record.noise), record.severity
    return image, "clean", 0


def _reported(record: BenchRecord) -> str:
    if record.verdict == NOT_ASSESSABLE:
        return NOT_ASSESSABLE
    return str(record.perceived) if record.verdict == ARTIFACT and record.perceived else "clean"


def _share(values: list[bool]) -> float | None:
    return round(100.0 * sum(values) / len(values), 2) if values else None


def _summary(views: dict[tuple[str, str, int], BenchRecord]) -> dict[str, Any]:
    noises = sorted({n for _, n, _ in views if n != "clean"})
    severities = sorted({s for _, n, s in views if n != "clean"})
    clean = [r for (_, n, _), r in views.items() if n == "clean"]
    type_right: dict[str, dict[int, float | None]] = {}
    typed: list[tuple[BenchRecord, int]] = []
    for noise in noises:
        type_right[noise] = {}
        for severity in severities:
            cell = [r for (_, n, s), r in views.items() if n == noise and s == severity]
            right = [r.verdict == ARTIFACT and r.perceived == noise for r in cell]
            type_right[noise][severity] = _share(right)
            typed += [(r, severity) for r, ok in zip(cell, right) if ok]
    strong_cells = [type_right[n][s] for n in noises for s in severities if s >= STRONG and type_right[n][s] is not None]
    strong = [r for (_, n, s), r in views.items() if n != "clean" and s >= STRONG]
    shown = {k: r for k, r in views.items() if k[1] == "clean" or k[2] >= STRONG}
    found = sorted({_reported(r) for r in shown.values()} - {"clean", NOT_ASSESSABLE, *noises})
    columns = ["clean", *noises, *found, NOT_ASSESSABLE]
    confusion = {t: dict.fromkeys(columns, 0) for t in ["clean", *noises]}
    for (_, noise, _), r in shown.items():
        confusion[noise][_reported(r)] += 1
    return {
        "images": len({image for image, _, _ in views}),
        "clean_images": len(clean),
        "type_right": type_right,
        "type_accuracy_severity_3_plus": (round(sum(strong_cells) / len(strong_cells), 2) if strong_cells else None),
        "severity_within_1": _share([r.perceived_severity is not None and abs(r.perceived_severity - s) <= 1
                                     for r, s in typed]),
        "clean_false_alarm": _share([r.verdict == ARTIFACT for r in clean]),
        "clean_not_assessable": _share([r.verdict == NOT_ASSESSABLE for r in clean]),
        "noisy_not_assessable": _share([r.verdict == NOT_ASSESSABLE for r in strong]),
        "confusion": confusion,
    }


def perceiver_summary(
    records: Sequence[BenchRecord], methods: Sequence[str], seen: Collection[str] | None = None
) -> dict[str, Any] | None:
    """The perceiver report of a run (the module docstring's metrics), per dataset and ``"all"``; ``None``
    when no record of ``methods`` (in order; the first that perceives is read) carries a verdict.

    ``seen``: image keys of the datasets' training splits (a prototype bank may have been built from
    them: VQA-RAD's test questions ask about training images). Those images are left out and counted
    (``left_out``); ``None``: every image counts, and ``heldout`` says it is not known."""
    method = next((m for m in methods if any(r.method == m and r.verdict is not None for r in records)), None)
    if method is None:
        return None
    views: dict[str, dict[tuple[str, str, int], BenchRecord]] = {}
    left_out: dict[str, set[str]] = {}
    for r in records:
        if r.method == method and r.verdict is not None:
            image = r.item.split("#", 1)[0]
            if seen is not None and image in seen:
                left_out.setdefault(r.dataset, set()).add(image)
                continue
            views.setdefault(r.dataset, {}).setdefault(_image_condition(r), r)
    pooled = {(f"{d}/{k[0]}", k[1], k[2]): r for d, group in views.items() for k, r in group.items()}
    datasets = {d: _summary(v) for d, v in views.items()}
    if pooled:
        datasets["all"] = _summary(pooled)
    return {"method": method, "heldout": seen is not None,
            "left_out": {d: len(images) for d, images in left_out.items()}, "datasets": datasets}


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def perceiver_markdown(summary: dict[str, Any] | None) -> list[str]:
    """The report's tables (markdown lines): a target table per dataset and type accuracy per noise."""
    if summary is None:
        return []
    lines = [f"## The perceiver (read from `{summary['method']}`, one verdict per image and condition)", ""]
    if not summary["heldout"]:
        lines += [("Every image counts: the training splits could not be read, so images a bank may have been "
                   "built from are not left out."), ""]
    for dataset, n in summary["left_out"].items():
        lines += [f"{dataset}: {n} image(s) left out, also in its training split.", ""]
    if not summary["datasets"]:
        return lines
    lines += [
             ("| dataset | images | type right, severity >= 3 (%) | severity within +-1 (%) | clean reported as "
              "artifact (%) | clean not assessable (%) | noisy (>= 3) not assessable (%) |"),
             "|---|---:|---:|---:|---:|---:|---:|"]
    for dataset, s in summary["datasets"].items():
        lines.append(f"| {dataset} | {s['images']} | {_fmt(s['type_accuracy_severity_3_plus'])} | "
                     f"{_fmt(s['severity_within_1'])} | {_fmt(s['clean_false_alarm'])} | "
                     f"{_fmt(s['clean_not_assessable'])} | {_fmt(s['noisy_not_assessable'])} |")
    pooled = summary["datasets"].get("all", {"type_right": {}})
    severities = sorted({sev for cells in pooled["type_right"].values() for sev in cells})
    if severities:
        lines += ["", "Type right (%) per noise and severity, all datasets:", "",
                  "| noise | " + " | ".join(f"severity {s}" for s in severities) + " |",
                  "|---|" + "---:|" * len(severities)]
        for noise, cells in pooled["type_right"].items():
            lines.append(f"| {noise} | " + " | ".join(_fmt(cells.get(s)) for s in severities) + " |")
    return lines + ["", "Confusion matrix (severity >= 3 and clean): `perceiver_confusion.png`.", ""]


def _plot_confusion(confusion: dict[str, dict[str, int]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols = list(confusion), list(next(iter(confusion.values())))
    counts = np.array([[confusion[t][p] for p in cols] for t in rows], dtype=float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.6 * len(rows)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("reported")
    ax.set_ylabel("true (clean, or severity >= 3)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_perceiver_report(summary: dict[str, Any] | None, out: str | Path) -> dict[str, Path]:
    """Write the report :func:`perceiver_summary` gave as ``perceiver.json`` and ``perceiver_confusion.png``
    (every dataset pooled) into ``out``; nothing for ``None`` (no record carried a verdict). Returns file
    name -> path."""
    if summary is None or "all" not in summary["datasets"]:
        return {}
    out = Path(out)
    paths = {"perceiver.json": out / "perceiver.json", "perceiver_confusion.png": out / "perceiver_confusion.png"}
    with atomic_output(paths["perceiver.json"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    pooled = summary["datasets"]["all"]
    _plot_confusion(pooled["confusion"], paths["perceiver_confusion.png"],
                    f"perceiver ({summary['method']}), {pooled['images']} test images: type right at severity "
                    f">= 3 {_fmt(pooled['type_accuracy_severity_3_plus'])}%")
    return paths

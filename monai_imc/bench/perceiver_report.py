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
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_imc.atomic import atomic_output
from monai_imc.bench.records import BenchRecord, image_of, is_image_noise
from monai_imc.noise.local import base_noise
from monai_imc.perceive import ARTIFACT, NOT_ASSESSABLE

__all__ = [
    "Verdict",
    "perceiver_markdown",
    "perceiver_metrics",
    "perceiver_summary",
    "plot_confusion",
    "write_perceiver_report",
]

#: The severities from which type accuracy is the issue's target ("severity >= 3").
STRONG = 3


@dataclass(frozen=True)
class Verdict:
    """What the perceiver said of one image under one condition (the unit every perceiver metric counts).

    Attributes:
        image: the image's id.
        noise: the true condition: ``clean`` or the image noise (a local variant named by its wrapped noise).
        severity: its level (0 for clean).
        verdict: ``clean``, ``artifact`` or ``not assessable``.
        perceived: the noise reported (with ``artifact``), else ``None``.
        perceived_severity: its level, else ``None``.
    """

    image: str
    noise: str
    severity: int
    verdict: str
    perceived: str | None = None
    perceived_severity: int | None = None

    @property
    def reported(self) -> str:
        """The confusion matrix's column: the noise reported, ``clean`` or ``not assessable``."""
        if self.verdict == NOT_ASSESSABLE:
            return NOT_ASSESSABLE
        return self.perceived if self.verdict == ARTIFACT and self.perceived else "clean"


def _verdict(record: BenchRecord, image: str) -> Verdict:
    """The verdict a record carries, on the view its answer was given on (a text noise's image is clean)."""
    noise, severity = (base_noise(record.noise), record.severity) if is_image_noise(record.noise) else ("clean", 0)
    perceived = record.perceived if record.verdict == ARTIFACT else None
    return Verdict(image, noise, severity, str(record.verdict), perceived, record.perceived_severity)


def _share(values: list[bool]) -> float | None:
    return round(100.0 * sum(values) / len(values), 2) if values else None


def perceiver_metrics(verdicts: Iterable[Verdict]) -> dict[str, Any]:
    """The perceiver's metrics (the module docstring's, in %) over ``verdicts``, one per image and condition
    (a repeated one counts once)."""
    views: dict[tuple[str, str, int], Verdict] = {}
    for v in verdicts:
        views.setdefault((v.image, v.noise, v.severity), v)
    noises = sorted({v.noise for v in views.values() if v.noise != "clean"})
    severities = sorted({v.severity for v in views.values() if v.noise != "clean"})
    cells: dict[tuple[str, int], list[Verdict]] = {}
    for v in views.values():
        cells.setdefault((v.noise, v.severity), []).append(v)
    clean = cells.get(("clean", 0), [])
    type_right: dict[str, dict[int, float | None]] = {}
    typed: list[Verdict] = []
    for noise in noises:
        type_right[noise] = {}
        for severity in severities:
            cell = cells.get((noise, severity), [])
            right = [v.verdict == ARTIFACT and v.perceived == noise for v in cell]
            type_right[noise][severity] = _share(right)
            typed += [v for v, ok in zip(cell, right) if ok]
    strong_cells = [type_right[n][s] for n in noises for s in severities if s >= STRONG and type_right[n][s] is not None]
    strong = [v for v in views.values() if v.noise != "clean" and v.severity >= STRONG]
    shown = [*clean, *strong]
    found = sorted({v.reported for v in shown} - {"clean", NOT_ASSESSABLE, *noises})
    columns = ["clean", *noises, *found, NOT_ASSESSABLE]
    confusion = {t: dict.fromkeys(columns, 0) for t in ["clean", *noises]}
    for v in shown:
        confusion[v.noise][v.reported] += 1
    return {
        "images": len({v.image for v in views.values()}),
        "clean_images": len(clean),
        "type_right": type_right,
        "type_accuracy_severity_3_plus": (round(sum(strong_cells) / len(strong_cells), 2) if strong_cells else None),
        "severity_within_1": _share([v.perceived_severity is not None and abs(v.perceived_severity - v.severity) <= 1
                                     for v in typed]),
        "clean_false_alarm": _share([v.verdict == ARTIFACT for v in clean]),
        "clean_not_assessable": _share([v.verdict == NOT_ASSESSABLE for v in clean]),
        "noisy_not_assessable": _share([v.verdict == NOT_ASSESSABLE for v in strong]),
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
    verdicts: dict[str, list[Verdict]] = {}
    left_out: dict[str, set[str]] = {}
    for r in records:
        if r.method == method and r.verdict is not None:
            image = image_of(r.item)
            if seen is not None and image in seen:
                left_out.setdefault(r.dataset, set()).add(image)
                continue
            verdicts.setdefault(r.dataset, []).append(_verdict(r, f"{r.dataset}/{image}"))
    datasets = {d: perceiver_metrics(v) for d, v in verdicts.items()}
    if verdicts:
        datasets["all"] = perceiver_metrics(v for group in verdicts.values() for v in group)
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


def plot_confusion(confusion: dict[str, dict[str, int]], path: Path, title: str) -> None:
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
    plot_confusion(pooled["confusion"], paths["perceiver_confusion.png"],
                    f"perceiver ({summary['method']}), {pooled['images']} test images: type right at severity "
                    f">= 3 {_fmt(pooled['type_accuracy_severity_3_plus'])}%")
    return paths

"""Calibration of the answers: expected calibration error and reliability diagrams.

The benchmark records, per answer, the probability the decoder gave it (:attr:`BenchRecord.confidence`,
where the model reports it) and whether it was right. With the answers sorted into :data:`BINS` equal-width
bins of confidence over [0, 1] (the last bin holds 1.0), the expected calibration error is

    ECE = sum over bins b of (n_b / N) * |accuracy_b - mean confidence_b|

(Naeini et al. 2015; Guo et al. 2017): 0 for a model whose confidence is its accuracy. The benchmark's
reports give it in points (x 100) for the closed-ended answers of each (dataset, noise, severity, method),
beside the calibration gap; :func:`write_reliability_diagrams` draws one reliability diagram per method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_imc.atomic import atomic_output
from monai_imc.bench.records import BenchRecord
from monai_imc.optional import require

__all__ = [
    "BINS",
    "ReliabilityBin",
    "expected_calibration_error",
    "reliability_bins",
    "write_reliability_diagrams",
]

#: Equal-width confidence bins of the ECE and the reliability diagrams.
BINS = 15


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin: its edges, how many answers fell in it, their mean confidence and accuracy."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(
    confidences: Sequence[float], correct: Sequence[bool | float], bins: int = BINS
) -> list[ReliabilityBin]:
    """The non-empty equal-width bins of ``confidences`` (in [0, 1]) with the accuracy of their answers.

    Raises:
        ValueError: lengths differ, fewer than one bin, or a confidence outside [0, 1].
    """
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.shape != hit.shape:
        raise ValueError(f"{conf.size} confidences for {hit.size} answers")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if conf.size and (not np.isfinite(conf).all() or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidences must lie in [0, 1]")
    index = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        member = index == b
        if member.any():
            out.append(
                ReliabilityBin(
                    b / bins,
                    (b + 1) / bins,
                    int(member.sum()),
                    float(conf[member].mean()),
                    float(hit[member].mean()),
                )
            )
    return out


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool | float], bins: int = BINS
) -> float | None:
    """The expected calibration error (a fraction in [0, 1]) of answers with these confidences and
    outcomes; ``None`` without answers.

    Raises:
        ValueError: see :func:`reliability_bins`.
    """
    found = reliability_bins(confidences, correct, bins)
    total = sum(b.count for b in found)
    if not total:
        return None
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in found) / total)


def _scored(records: Sequence[BenchRecord]) -> tuple[list[float], list[bool]]:
    scored = [r for r in records if r.closed and r.confidence is not None]
    return [float(r.confidence) for r in scored], [r.correct for r in scored]  # type: ignore[arg-type]


def write_reliability_diagrams(
    records: Sequence[BenchRecord], out: str | Path, methods: Sequence[str]
) -> dict[str, Path]:
    """One reliability diagram per method (closed answers, all datasets): accuracy against confidence per
    bin, clean images and questions apart from the noisy conditions, ECE in the legend.

    Returns:
        file name (``reliability_<method>.png``) -> path, for the methods whose answers carry confidences.

    Raises:
        OptionalImportError: matplotlib (the ``bench`` extra) is missing.
    """
    require("matplotlib", extra="bench", purpose="the reliability diagrams")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    for method in methods:
        mine = [r for r in records if r.method == method]
        parts = {
            "clean": [r for r in mine if r.noise == "clean"],
            "noisy": [r for r in mine if r.noise != "clean"],
        }
        if not any(_scored(part)[0] for part in parts.values()):
            continue
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
        for (name, part), style in zip(parts.items(), (("o", "-"), ("s", ":"))):
            conf, hit = _scored(part)
            if not conf:
                continue
            found = reliability_bins(conf, hit)
            ece = expected_calibration_error(conf, hit) or 0.0
            sizes = [20 + 180 * b.count / len(conf) for b in found]
            ax.plot([b.confidence for b in found], [b.accuracy for b in found], linestyle=style[1], alpha=0.7)
            ax.scatter(
                [b.confidence for b in found],
                [b.accuracy for b in found],
                s=sizes,
                marker=style[0],
                label=f"{name}: ECE {100 * ece:.1f} (n={len(conf)})",
                alpha=0.8,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"answer probability ({BINS} bins; marker size: share of answers)")
        ax.set_ylabel("closed-ended accuracy")
        ax.set_title(f"reliability: {method}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        name = f"reliability_{method}.png"
        paths[name] = Path(out) / name
        with atomic_output(paths[name]) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return paths

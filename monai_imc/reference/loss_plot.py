"""The loss-curve picture of a reference training run (``loss_curve.png`` beside the checkpoint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_losses"]


def plot_losses(history: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    """Draw each named loss curve (``(step, loss)`` points, smoothed over 1/50 of the run) on a log scale to
    ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in history.items():
        if not points:
            continue
        steps, values = zip(*points)
        window = max(1, len(values) // 50)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

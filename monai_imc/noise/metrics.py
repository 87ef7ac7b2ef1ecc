"""Fidelity measures for the severity scale: PSNR for images, character edit distance for text."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["edit_distance", "psnr"]


def _as_float64(image: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        return image.detach().cpu().double().numpy()
    return np.asarray(image, dtype=np.float64)


def psnr(reference: np.ndarray | torch.Tensor, test: np.ndarray | torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``test`` against ``reference``; the peak is the reference's range.

    Returns:
        the PSNR, ``inf`` for identical images.

    Raises:
        ValueError: the shapes differ.
    """
    ref, tst = _as_float64(reference), _as_float64(test)
    if ref.shape != tst.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {tst.shape}")
    peak = float(ref.max() - ref.min()) or 1.0
    mse = float(np.mean((ref - tst) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(peak**2 / mse))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings, in characters (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]

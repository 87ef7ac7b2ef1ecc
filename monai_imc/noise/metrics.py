"""Fidelity measures for the severity scale: PSNR and SSIM for images, character edit distance for text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["edit_distance", "psnr", "ssim"]


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


def ssim(reference: np.ndarray | torch.Tensor, test: np.ndarray | torch.Tensor) -> float:
    """Structural similarity (Wang et al. 2004) of ``test`` against ``reference``: MONAI's
    :class:`~monai.metrics.SSIMMetric` (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03) with the reference's
    range as the data range, on every channel of an image ``(C, H, W)`` or every (H, W) slice of a volume
    ``(C, H, W, D)`` (the plane the image noises act in), averaged.

    The measure MedFM-Robust calibrates its severities with; 1.0 for identical images.

    Raises:
        ValueError: the shapes differ, or the input is not channel-first with sides of at least 11 pixels.
    """
    from monai.metrics import SSIMMetric

    ref, tst = _as_float64(reference), _as_float64(test)
    if ref.shape != tst.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {tst.shape}")
    if ref.ndim not in (3, 4) or min(ref.shape[1:3]) < 11:
        raise ValueError(f"expected (C, H, W) or (C, H, W, D) with H, W >= 11, got shape {ref.shape}")
    peak = float(ref.max() - ref.min()) or 1.0

    def planes(a: np.ndarray) -> torch.Tensor:  # (N, 1, H, W): every channel (and slice) on its own
        if a.ndim == 4:
            a = np.moveaxis(a, -1, 1).reshape(-1, *a.shape[1:3])
        return torch.from_numpy(np.ascontiguousarray(a))[:, None]

    return float(SSIMMetric(spatial_dims=2, data_range=peak)(planes(tst), planes(ref)).mean())


def edit_distance(a: Sequence[object], b: Sequence[object]) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions): of two strings in
    characters, of two lists of words in words."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]

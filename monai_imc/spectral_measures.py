"""The physics measures read in k-space (the image's Fourier spectrum): a spike, ghost replicas, truncation,
lost sharpness. Part of :mod:`monai_imc.quality` (which names them in :data:`~monai_imc.quality.MEASURES`);
each takes the working image and, where it was already made, its spectrum.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

__all__ = ["ghost_energy", "log_spectrum", "power_spectrum", "sharpness", "spike_score", "truncation_cliff"]


def log_spectrum(img: np.ndarray) -> np.ndarray:
    """Centred log magnitude spectrum of ``img`` minus its mean (Hann-windowed against edge leakage)."""
    window = np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    spectrum = np.abs(sfft.fftshift(sfft.fft2((img - img.mean()) * window)))
    return np.log(spectrum + 1e-9)


def spike_score(
    img: np.ndarray, reach: float = 0.15, exclude: int = 2, size: int = 5, log_spec: np.ndarray | None = None
) -> float:
    """k-space spike: the largest peak of the log spectrum over its local median (within ``reach`` of the
    centre, the DC neighbourhood of ``exclude`` bins left out). A spike is one outstanding k-space sample.
    ``log_spec``: :func:`log_spectrum` of ``img`` when already computed."""
    log_spec = log_spectrum(img) if log_spec is None else log_spec
    cy, cx = log_spec.shape[0] // 2, log_spec.shape[1] // 2
    ry, rx = max(size, int(reach * log_spec.shape[0])), max(size, int(reach * log_spec.shape[1]))
    crop = log_spec[max(0, cy - ry) : cy + ry + 1, max(0, cx - rx) : cx + rx + 1]
    excess = crop - ndimage.median_filter(crop, size=size, mode="reflect")
    oy, ox = cy - max(0, cy - ry), cx - max(0, cx - rx)
    excess[max(0, oy - exclude) : oy + exclude + 1, :] = 0.0  # the DC row and column carry edge energy
    excess[:, max(0, ox - exclude) : ox + exclude + 1] = 0.0
    return float(excess.max())


def power_spectrum(img: np.ndarray) -> np.ndarray:
    """Power spectrum of ``img`` minus its mean (not shifted, no window)."""
    return np.abs(sfft.fft2(img - img.mean())) ** 2


GHOST_FLOOR = 0.02
"""Added to the ghost drop before its log: below the drop of a clean image's k-space lines (10th to 90th
percentile 0.04-0.11 on the reference model's 28 held-out validation views), so that the log of a tiny drop
does not spread clean images apart."""


def ghost_energy(
    img: np.ndarray, periods: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8), power: np.ndarray | None = None
) -> float:
    """Ghost replicas along a phase-encoding axis: every p-th k-space line scaled down makes p ghost copies.

    Per axis, the log energy of each k-space line minus its running median; the drop is the largest
    of the lines of one phase of one period ``p`` below the other lines' mean (both axes tried: the
    phase-encoding axis is not known). The score is ``log(drop + GHOST_FLOOR)``: the drop grows
    multiplicatively with the ghosts' intensity (on the reference model's held-out validation views the
    level-5 drops spread over about eight times the range of the level-1 ones), and its log gives the
    levels alike spreads, as the perceiver's shared covariance assumes. ``power``: :func:`power_spectrum`
    of ``img`` when already computed.
    """
    power = sfft.fftshift(power_spectrum(img) if power is None else power)
    best = 0.0
    for axis in (0, 1):
        energy = np.log(power.sum(axis=1 - axis) + 1e-12)
        residual = energy - ndimage.median_filter(energy, size=9, mode="reflect")
        for p in periods:
            if residual.shape[0] < 4 * p:
                continue
            for phase in range(p):
                picked = np.zeros(residual.shape[0], dtype=bool)
                picked[phase::p] = True
                best = max(best, float(residual[~picked].mean() - residual[picked].mean()))
    return float(np.log(best + GHOST_FLOOR))


def truncation_cliff(img: np.ndarray, log_spec: np.ndarray | None = None) -> float:
    """k-space truncation: the steepest drop of the log power profile along either k axis in the outer
    half of k-space (truncated sampling cuts the spectrum; blur makes it roll off smoothly)."""
    log_spec = log_spectrum(img) if log_spec is None else log_spec
    best = 0.0
    for axis in (0, 1):
        profile = log_spec.mean(axis=1 - axis)
        n, c = profile.shape[0], profile.shape[0] // 2
        half = 0.5 * (profile[c:][: n - c] + profile[: c + 1][::-1][: n - c])  # fold +k and -k
        half = ndimage.uniform_filter1d(half, 3)
        start = max(2, len(half) // 6)
        drops = half[start:-3] - half[start + 3 :]
        if drops.size:
            best = max(best, float(drops.max()))
    return best


def sharpness(img: np.ndarray, power: np.ndarray | None = None) -> float:
    """High-frequency energy: the share (log10) of the spectrum's energy above half the Nyquist frequency.
    ``power``: :func:`power_spectrum` of ``img`` when already computed."""
    power = power_spectrum(img) if power is None else power
    fy = np.abs(sfft.fftfreq(img.shape[0]))[:, None]
    fx = np.abs(sfft.fftfreq(img.shape[1]))[None, :]
    high = np.maximum(fy, fx) > 0.25
    total = float(power.sum()) or 1e-12
    return float(np.log10(float(power[high].sum()) / total + 1e-12))

"""Physics measures of image artifacts, computed on the view the model is shown.

Each measure looks at what an artifact is made of, whatever the model's features show: thermal noise,
a k-space spike, ghost replicas along the phase-encoding axis, k-space truncation and ringing, lost
sharpness, a smooth intensity trend, 8 x 8 compression blocks, noise that grows with the signal (its
level function over the intensity range), a lifted noise floor, clipped pixels, lost left-right balance. They
are cheap (a few FFTs and filters of an image of at most :data:`WORK_SIZE` pixels a side) and use numpy
and scipy (``scipy.fft``, ``scipy.ndimage``) only. MRIQC's image-quality metrics are the reference.

:func:`assessability` says why an image cannot be assessed at all (constant, tiny, NaN, one row ...);
:func:`measures` returns the named measures of an assessable one, in :data:`MEASURES` order.

Usage::

    from monai_imc.quality import assessability, measure_vector, measures

    reason = assessability(view)        # None, or "constant image (no contrast)" ...
    if reason is None:
        m = measures(view)              # {"noise_sigma": 0.012, "spike_score": 1.4, ...}
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from monai_imc.assessable import MAX_ASPECT, MIN_SIDE, assessability
from monai_imc.spectral_measures import (
    ghost_energy,
    log_spectrum,
    power_spectrum,
    sharpness,
    spike_score,
    truncation_cliff,
)

__all__ = [
    "MAX_ASPECT",
    "MEASURES",
    "MIN_SIDE",
    "WORK_SIZE",
    "anisotropy",
    "assessability",
    "bias_trend",
    "blockiness",
    "check_measures",
    "clipped_shares",
    "ghost_energy",
    "gibbs_ringing",
    "histogram_entropy",
    "left_right_asymmetry",
    "measure_vector",
    "measure_view",
    "measure_views",
    "measures",
    "measures_and_vector",
    "noise_level_function",
    "noise_sigma",
    "sharpness",
    "signal_dependent_noise",
    "spike_score",
    "truncation_cliff",
    "vector_of",
    "warm_up",
    "warm_up_view",
]

WORK_SIZE = 256
"""Measures other than blockiness run on the view shrunk (by area) to at most this many pixels a side."""

MEASURES = (
    "noise_sigma",
    "spike_score",
    "ghost_energy",
    "gibbs_ringing",
    "truncation_cliff",
    "sharpness",
    "anisotropy",
    "bias_trend",
    "blockiness",
    "signal_dependent_noise",
    "noise_dark",
    "noise_slope",
    "noise_bright",
    "left_right_asymmetry",
    "histogram_entropy",
    "clipped_white",
    "clipped_black",
)
"""The names of :func:`measures`, in the order of :func:`measure_vector` (a bank built with fewer reads
its own list: :func:`measures_and_vector` takes the names)."""

_LOG_SCALED = ("noise_sigma", "clipped_white", "clipped_black")
"""Measures that span decades: the descriptor reads their log."""


def _gray(view: ArrayLike) -> np.ndarray:
    """A float64 ``(H, W)`` copy of a ``(H, W)`` or ``(H, W, C)`` view (channels averaged)."""
    arr = np.asarray(view)
    if arr.ndim == 3:
        arr = arr.mean(axis=-1)
    if arr.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) view, got shape {arr.shape}")
    return arr.astype(np.float64)


def _unit(img: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the 0.5 / 99.5 percentiles' span (values outside are kept, not clipped)."""
    low, high = np.percentile(img, (0.5, 99.5))
    if high - low <= 1e-12:
        low, high = float(img.min()), float(img.max())
    return (img - low) / max(high - low, 1e-12)


def _shrink(img: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """Area-average ``img`` by an integer factor so that its longest side is at most ``size``."""
    factor = math.ceil(max(img.shape) / size)
    if factor <= 1:
        return img
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    return img[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _second_difference(img: np.ndarray) -> np.ndarray:
    """Immerkaer's 3 x 3 kernel ``[1 -2 1] x [1 -2 1]`` (separable): cancels locally linear signal."""
    kernel = np.array([1.0, -2.0, 1.0])
    return ndimage.correlate1d(
        ndimage.correlate1d(img, kernel, axis=0, mode="reflect"), kernel, axis=1, mode="reflect"
    )


def noise_sigma(img: np.ndarray, residual: np.ndarray | None = None) -> float:
    """Immerkaer's estimate of the standard deviation of additive white noise (fast, edge-robust).

    A 3 x 3 kernel that cancels any locally linear signal leaves the noise; its mean absolute response
    times ``sqrt(pi / 2) / (6 (H - 2) (W - 2))`` estimates sigma (Immerkaer 1996).
    """
    response = (_second_difference(img) if residual is None else residual)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * np.abs(response).mean() / 6.0)


def _within(mask: np.ndarray, reach: int) -> np.ndarray:
    """Pixels within ``reach`` (chessboard distance) of ``mask``: a box dilation (a separable maximum filter)."""
    return ndimage.maximum_filter(mask, size=2 * reach + 1, mode="constant", cval=False)


def gibbs_ringing(img: np.ndarray) -> float:
    """Ringing next to strong edges: the band-pass (difference of Gaussians) response 3 to 8 pixels from the
    strongest edges, less the same response away from edges (noise and texture are everywhere; ringing is
    where edges are), over the edges' own gradient (so it does not grow with the contrast).

    The filters run in float32 (a third faster than float64; the measure moves by under 1e-4 of itself),
    the means in float64."""
    img = np.asarray(img, dtype=np.float32)
    smooth = ndimage.gaussian_filter(img, 1.0)
    magnitude = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
    edges = magnitude >= np.quantile(magnitude, 0.97)
    near = _within(edges, 8) & ~_within(edges, 2)
    far = ~_within(edges, 12)
    if not edges.any() or not near.any() or not far.any():
        return 0.0
    band = np.abs(ndimage.gaussian_filter(img, 0.7) - ndimage.gaussian_filter(img, 1.5))
    edge_gradient = float(magnitude[edges].mean(dtype=np.float64))
    return float(
        (band[near].mean(dtype=np.float64) - band[far].mean(dtype=np.float64)) / (edge_gradient + 1e-6)
    )


def anisotropy(img: np.ndarray) -> float:
    """Smearing along one axis (k-space motion, ghosts along the phase-encoding axis): the absolute log
    ratio of the fine gradient energy along the two axes (about 0 for an image sharp alike both ways)."""
    gy = float(np.mean(np.diff(img, axis=0) ** 2)) + 1e-12
    gx = float(np.mean(np.diff(img, axis=1) ** 2)) + 1e-12
    return abs(float(np.log(gy / gx)))


def _foreground(img: np.ndarray) -> np.ndarray:
    return img > 0.1 * float(np.quantile(img, 0.99))


def bias_trend(img: np.ndarray, order: int = 2) -> float:
    """Low-frequency intensity trend (bias field): the standard deviation of a degree-``order`` polynomial
    fitted to the log intensity of the foreground, on a coarse grid (anatomy averages out, shading does not)."""
    coarse = _shrink(np.clip(img, 0.0, None), 32)
    mask = _foreground(coarse)
    if mask.sum() < 10:
        return 0.0
    yy, xx = np.mgrid[0 : coarse.shape[0], 0 : coarse.shape[1]]
    y, x = (yy[mask] / coarse.shape[0] - 0.5), (xx[mask] / coarse.shape[1] - 0.5)
    terms = [y**i * x**j for i in range(order + 1) for j in range(order + 1 - i)]
    design = np.stack(terms, axis=1)
    target = np.log(coarse[mask] + 0.05)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return float((design[:, 1:] @ coef[1:]).std())


def blockiness(img: np.ndarray, block: int = 8) -> float:
    """8 x 8 block boundaries (JPEG): the mean absolute step across the most prominent block phase over
    the mean step at the other phases, both axes (log). Run at native resolution (a central crop)."""
    steps = []
    for axis in (0, 1):
        diff = np.abs(np.diff(img, axis=axis))
        per = diff.mean(axis=1 - axis)
        n = (per.shape[0] // block) * block
        if n < 2 * block:
            return 0.0
        phases = per[:n].reshape(-1, block).mean(axis=0)
        top = int(phases.argmax())
        others = np.delete(phases, top).mean()
        steps.append(np.log((phases[top] + 1e-6) / (others + 1e-6)))
    return float(np.mean(steps))


def signal_dependent_noise(img: np.ndarray, residual: np.ndarray | None = None) -> float:
    """Noise that grows with the signal (quantum noise of low dose): log ratio of the local noise (robust
    spread of a fine high-pass residual) in the brightest foreground quartile to that in the darkest one."""
    residual = _second_difference(img) if residual is None else residual
    level = ndimage.gaussian_filter(img, 2.0)
    mask = _foreground(img)
    if mask.sum() < 64:
        return 0.0
    q1, q3 = np.quantile(level[mask], (0.25, 0.75))
    dark, bright = residual[mask & (level <= q1)], residual[mask & (level >= q3)]
    if dark.size < 16 or bright.size < 16:
        return 0.0

    def spread(x: np.ndarray) -> float:
        return float(np.median(np.abs(x - np.median(x)))) + 1e-4

    return float(np.log(spread(bright) / spread(dark)))


def noise_level_function(
    img: np.ndarray, block: int = 8, bins: int = 8, residual: np.ndarray | None = None
) -> tuple[float, float, float]:
    """How the noise level changes with the signal (the noise level function of Poisson-Gaussian noise).

    Per ``block`` x ``block`` block, the mean level and a robust noise sigma (MAD of Immerkaer's
    residual); per intensity bin (``bins`` quantile bins of the block levels), the lower quartile of the
    blocks' sigmas (the flattest blocks: edges and texture raise the others); a line fitted to log sigma
    over the level. Thermal (Rician) noise is flat and lifts the darkest bin; quantum (low-dose) noise
    grows with the signal. Blocks with half or more of their pixels at the image's darkest or brightest
    value are left out: clipped regions (a display window's black air and white bone) carry no noise.

    Returns:
        ``(log sigma of the darkest bin, slope of log sigma per unit level, log sigma of the brightest bin)``.
    """
    r = (_second_difference(img) if residual is None else residual) / 6.0  # the kernel's gain on white noise
    level = ndimage.uniform_filter(img, 3)
    h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
    if h < 2 * block or w < 2 * block:
        return 0.0, 0.0, 0.0

    def blocks(a: np.ndarray) -> np.ndarray:
        return (
            a[:h, :w]
            .reshape(h // block, block, w // block, block)
            .transpose(0, 2, 1, 3)
            .reshape(-1, block * block)
        )

    values = blocks(img)
    low, high = float(img.min()), float(img.max())
    tolerance = 1e-6 * max(high - low, 1e-12)
    unclipped = ((values > low + tolerance) & (values < high - tolerance)).mean(axis=1) > 0.5
    if unclipped.sum() < 2 * bins:
        return 0.0, 0.0, 0.0
    sigma = 1.4826 * np.median(np.abs(blocks(r)[unclipped]), axis=1)
    levels = blocks(level)[unclipped].mean(axis=1)
    edges = np.quantile(levels, np.linspace(0.0, 1.0, bins + 1))
    xs, ys = [], []
    for low, high in itertools.pairwise(edges):
        inside = (levels >= low) & (levels <= high)
        if inside.sum() >= 4:
            xs.append(float(np.median(levels[inside])))
            ys.append(math.log(float(np.quantile(sigma[inside], 0.25)) + 1e-4))
    if len(xs) < 2 or np.ptp(xs) <= 1e-9:
        return (ys[0], 0.0, ys[-1]) if ys else (0.0, 0.0, 0.0)
    slope = float(np.polyfit(np.array(xs), np.array(ys), 1)[0])
    return ys[0], slope, ys[-1]


def left_right_asymmetry(img: np.ndarray) -> float:
    """Lost left-right balance (a bias field's shading; anatomy is roughly mirror-symmetric): the RMS log
    ratio of the coarse (32 px, smoothed) foreground intensity to its mirror image."""
    coarse = ndimage.gaussian_filter(_shrink(np.clip(img, 0.0, None), 32), 1.0)
    mirror = coarse[:, ::-1]
    mask = _foreground(coarse) & _foreground(mirror)
    if mask.sum() < 10:
        return 0.0
    return float(np.sqrt(np.mean((np.log(coarse[mask] + 0.05) - np.log(mirror[mask] + 0.05)) ** 2)))


def histogram_entropy(img: np.ndarray, bins: int = 64) -> float:
    """Entropy (nats) of the foreground's intensity histogram: tissue classes make peaks; shading and
    noise smear them."""
    mask = _foreground(img)
    counts, _ = np.histogram(np.clip(img[mask], 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    p = counts[counts > 0] / max(int(counts.sum()), 1)
    return float(-(p * np.log(p)).sum())


def clipped_shares(gray: np.ndarray) -> tuple[float, float]:
    """Shares of pixels at the view's brightest and at its darkest value (within 0.5 / 255 of the range).

    Clipping at white grows under a bias field's gain and under noise on bright tissue; a noise floor
    (Rician magnitude noise) lifts the background off the darkest value."""
    low, high = float(gray.min()), float(gray.max())
    tolerance = 0.5 / 255.0 * max(high - low, 1e-12)
    return float(np.mean(gray >= high - tolerance)), float(np.mean(gray <= low + tolerance))


def _native_crop(img: np.ndarray, size: int = 2 * WORK_SIZE) -> np.ndarray:
    """A central crop of at most ``size`` pixels a side whose origin keeps the 8 x 8 grid."""
    h, w = img.shape
    y0, x0 = max(0, (h - size) // 2) // 8 * 8, max(0, (w - size) // 2) // 8 * 8
    return img[y0 : y0 + size, x0 : x0 + size]


class _Shared:
    """One view's working images and the intermediate results several measures read, each made once."""

    def __init__(self, view: ArrayLike) -> None:
        self.gray = _gray(view)
        self.native = _unit(self.gray)
        self.img = _shrink(self.native)

    @functools.cached_property
    def log_spec(self) -> np.ndarray:
        return log_spectrum(self.img)

    @functools.cached_property
    def power(self) -> np.ndarray:
        return power_spectrum(self.img)

    @functools.cached_property
    def residual(self) -> np.ndarray:  # Immerkaer's: shared by the noise measures
        return _second_difference(self.img)

    @functools.cached_property
    def level_function(self) -> tuple[float, float, float]:
        return noise_level_function(self.img, residual=self.residual)

    @functools.cached_property
    def clipped(self) -> tuple[float, float]:
        return clipped_shares(self.gray)


_MEASURE: dict[str, Callable[[_Shared], float]] = {
    "noise_sigma": lambda v: noise_sigma(v.img, v.residual),
    "spike_score": lambda v: spike_score(v.img, log_spec=v.log_spec),
    "ghost_energy": lambda v: ghost_energy(v.img, power=v.power),
    "gibbs_ringing": lambda v: gibbs_ringing(v.img),
    "truncation_cliff": lambda v: truncation_cliff(v.img, log_spec=v.log_spec),
    "sharpness": lambda v: sharpness(v.img, power=v.power),
    "anisotropy": lambda v: anisotropy(v.img),
    "bias_trend": lambda v: bias_trend(v.img),
    "blockiness": lambda v: blockiness(_native_crop(v.native)),
    "signal_dependent_noise": lambda v: signal_dependent_noise(v.img, v.residual),
    "noise_dark": lambda v: v.level_function[0],
    "noise_slope": lambda v: v.level_function[1],
    "noise_bright": lambda v: v.level_function[2],
    "left_right_asymmetry": lambda v: left_right_asymmetry(v.img),
    "histogram_entropy": lambda v: histogram_entropy(v.img),
    "clipped_white": lambda v: v.clipped[0],
    "clipped_black": lambda v: v.clipped[1],
}


def measures(view: ArrayLike, names: Sequence[str] = MEASURES) -> dict[str, float]:
    """The physics measures ``names`` of one assessable view (default: all of :data:`MEASURES`), by name;
    only those are computed (a bank reads its own list), the results they share once.

    Args:
        view: the model's view, ``(H, W)`` or ``(H, W, C)``, any numeric dtype.
        names: the measures wanted; a name that is not a measure is left out (:func:`check_measures`).

    Raises:
        ValueError: the view is not assessable (see :func:`assessability`).
    """
    reason = assessability(view)
    if reason is not None:
        raise ValueError(f"view cannot be measured: {reason}")
    return _measured(view, names)


def _measured(view: ArrayLike, names: Sequence[str]) -> dict[str, float]:
    """:func:`measures` of a view already found assessable."""
    shared, wanted = _Shared(view), set(names)
    return {name: float(_MEASURE[name](shared)) for name in MEASURES if name in wanted}


def check_measures(names: Sequence[str]) -> list[str]:
    """``names`` as a list, each one a measure of :data:`MEASURES`.

    Raises:
        ValueError: an unknown name (the message lists the measures).
    """
    unknown = sorted(set(names) - set(MEASURES))
    if unknown:
        raise ValueError(f"unknown physics measures {unknown}; the measures are {list(MEASURES)}")
    return list(names)


def vector_of(values: Mapping[str, float], names: Sequence[str] = MEASURES) -> np.ndarray:
    """The descriptor's part: the measures ``names`` of :func:`measures`' ``values`` as a float32 vector
    (the noise level and the clipped shares as their log: they span decades)."""
    return np.array(
        [math.log(values[name] + 1e-4) if name in _LOG_SCALED else values[name] for name in names],
        dtype=np.float32,
    )


def measures_and_vector(
    view: ArrayLike, names: Sequence[str] = MEASURES
) -> tuple[dict[str, float], np.ndarray]:
    """:func:`measures` and the descriptor's part of them (:func:`vector_of`), in ``names`` order (a bank
    records the names it was built with).

    Raises:
        KeyError: a name that is not a measure.
    """
    values = measures(view, names)
    return values, vector_of(values, names)


def measure_vector(view: ArrayLike, names: Sequence[str] = MEASURES) -> np.ndarray:
    """The descriptor's part of :func:`measures_and_vector`."""
    return measures_and_vector(view, names)[1]


def measure_view(
    view: ArrayLike, names: Sequence[str] = MEASURES
) -> tuple[dict[str, float], np.ndarray] | None:
    """:func:`measures_and_vector` of ``view`` (the vector in ``names`` order: a bank's own list), or ``None``
    when it is degenerate (see :func:`assessability`: the perceiver says so without measuring)."""
    arr = np.asarray(view)
    if assessability(arr) is not None:
        return None
    values = _measured(arr, names)  # assessable: not checked twice
    return values, vector_of(values, names)


def measure_views(
    views: Sequence[ArrayLike], names: Sequence[str] = MEASURES
) -> list[tuple[dict[str, float], np.ndarray] | None]:
    """:func:`measure_view` of each view (one task for a worker process: :func:`monai_imc.workers.beside`)."""
    return [measure_view(v, names) for v in views]


def warm_up(size: int = WORK_SIZE) -> None:
    """Every measure once on a synthetic ``size`` x ``size`` view (:func:`warm_up_view`), for nothing: what
    the worker process beside the encode does while the model loads, so that the first image does not wait for the
    imports, scipy's FFT plans and numpy's first buffers."""
    measure_views([warm_up_view(size)])


def warm_up_view(size: int = WORK_SIZE) -> np.ndarray:
    """An assessable synthetic view: a shaded disc on black with seeded noise, ``(size, size)`` uint8."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    disc = ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.16) * (0.6 + 0.3 * xx)
    noisy = disc + np.random.default_rng(0).normal(0.0, 0.02, disc.shape)
    return np.clip(noisy * 255, 0, 255).astype(np.uint8)

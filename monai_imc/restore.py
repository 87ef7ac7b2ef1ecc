"""Perceiver-guided image restoration: the perceived artifact picks its classical correction.

Given the view the model was shown and the :class:`~monai_imc.perceive.Perception` of it, :class:`Restorer`
applies the correction that fits the artifact, each from a maintained library, its parameters scaled by the
perceived severity (1..5):

=============  ===============================================================================================
artifact       correction
=============  ===============================================================================================
``bias_field`` N4 (SimpleITK ``N4BiasFieldCorrectionImageFilter``) on a copy shrunk to <= 64 px, inside an
               Otsu foreground mask; the log field, read back at full size, is centred on the mask (no
               global gain); 3 fitting levels of ``20 + 10 * severity`` iterations each.
``rician``     non-local means (scikit-image ``denoise_nl_means``, fast mode, 5 x 5 patches, distance 6),
``low_dose``   sigma from ``estimate_sigma``, ``h = (0.6 + 0.1 * severity) * sigma``.
``blur``       Richardson-Lucy deconvolution (scikit-image ``richardson_lucy``) with the Gaussian PSF of the
               perceived level (the blur noise's own sigma for that level, :mod:`monai_imc.noise.image`),
               ``4 + 2 * severity`` iterations.
``spike``      a notch in the 2-D spectrum (``scipy.fft``): the strongest outlier of ``log |F|`` against its
               7 x 7 median, away from the centre, and its mirror are set to zero (radius 1 px, 2 px from
               severity 4); nothing when no such outlier stands out (:data:`SPIKE_MIN_LOG_RATIO`).
``gibbs``      unringing by local sub-voxel shifts (Kellner et al., MRM 2016): the 1-D algorithm, applied
               along the rows and then the columns (the paper's 2-D weighting of the spectrum is left out):
               per pixel, the shift of [-1/2, 1/2] px with the least total variation in a 1..3 px window,
               interpolated back to the grid. Independent of the severity. It removes ringing sampled at
               the acquisition's own resolution (+1.2 dB on a truncated phantom, see the tests); on the
               benchmark's Gibbs noise (k-space cut and zero-filled, so the ringing is wider than the
               method's one-pixel shifts) it gains nothing, so the default :class:`Restorer` leaves it out.
``jpeg``       deblocking by total-variation denoising (scikit-image ``denoise_tv_chambolle``), weight
               ``0.01 * severity``.
``motion``,    none: no classical correction of rigid k-space motion or periodic ghosts from a magnitude
``ghosting``   image alone; recorded as ``"no restoration for <type>"``.
=============  ===============================================================================================

Clean, not-assessable and unknown findings pass unchanged (the very object given). The result carries a
:class:`Restoration` record (action, parameters) that the SR keeps.

Example::

    restorer = Restorer(enabled=True)
    restored, record = restorer.restore(view, perception)
    record.applied, record.summary          # True, 'non-local means (h=0.031, sigma=0.034, ...)'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft, ndimage

from monai_imc.models.base import ImageInput
from monai_imc.optional import require
from monai_imc.perceive import ARTIFACT, Perception

__all__ = [
    "CORRECTIONS",
    "DEFAULT_CORRECTIONS",
    "LIBRARIES",
    "SPIKE_MIN_LOG_RATIO",
    "Restoration",
    "Restorer",
    "require_restore",
    "restore_view",
]

#: A spectral peak is a spike when ``log |F|`` exceeds its 7 x 7 median by this much (e**2.4 ~ 11 times; on
#: clean validation views the largest excess was 1.5-2.2).
SPIKE_MIN_LOG_RATIO = 2.4
#: Views with a shorter side below this are left alone (too small to estimate anything from).
MIN_SIDE = 16

Plane = np.ndarray


#: The libraries each correction needs beyond numpy and scipy (the ``restore`` extra installs them all).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "bias_field": ("SimpleITK",),
    "rician": ("skimage", "pywt"),  # estimate_sigma reads wavelet coefficients
    "low_dose": ("skimage", "pywt"),
    "blur": ("skimage",),
    "jpeg": ("skimage",),
    "spike": (),
    "gibbs": (),
}


def require_restore(purpose: str = "image restoration", noises: Sequence[str] | None = None) -> None:
    """Raise :class:`~monai_imc.optional.OptionalImportError` (with the install hint) unless the libraries of
    the corrections of ``noises`` import (default: every correction's: scikit-image, SimpleITK, PyWavelets,
    the ``restore`` extra). A noise without a correction needs nothing."""
    wanted = CORRECTIONS if noises is None else noises
    for module in dict.fromkeys(m for n in wanted for m in LIBRARIES.get(n, ())):
        require(module, extra="restore", purpose=purpose)


Correction = Callable[[Plane, int], tuple[Plane, dict[str, Any]]]


@dataclass(frozen=True)
class Restoration:
    """What restoration did to one view.

    Attributes:
        applied: whether the view was changed.
        action: the correction's name (``"N4 bias field correction"``, ``"non-local means"`` ...), ``"none"``.
        noise: the perceived artifact it answered (``None`` for clean or not assessable views).
        severity: the perceived severity the parameters were scaled by.
        parameters: the correction's parameters (numbers rounded for the record).
        reason: why nothing was done (``"clean"``, ``"no restoration for motion"`` ...); empty when applied.
    """

    applied: bool
    action: str = "none"
    noise: str | None = None
    severity: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def summary(self) -> str:
        """One line for the SR: ``non-local means (h=0.031, sigma=0.034)`` or ``none: no restoration for motion``."""
        if not self.applied:
            return f"none: {self.reason}"
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return f"{self.action} ({params})" if params else self.action


def _rounded(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in params.items()}


# ---------------------------------------------------------------------------------------- corrections
def _n4(plane: Plane, severity: int) -> tuple[Plane, dict[str, Any]]:
    import SimpleITK as sitk

    levels, iterations = 3, 20 + 10 * severity
    image = sitk.GetImageFromArray((plane * 255.0 + 1.0).astype(np.float32))  # N4 takes logs: keep it > 0
    shrink = max(1, int(np.ceil(max(plane.shape) / 64)))
    small = sitk.Shrink(image, [shrink, shrink])
    mask = sitk.OtsuThreshold(sitk.SmoothingRecursiveGaussian(small, 1.0), 0, 1, 200)
    if float(sitk.GetArrayViewFromImage(mask).mean()) < 0.05:  # Otsu found no foreground: the whole view
        mask = sitk.Image(small.GetSize(), sitk.sitkUInt8) + 1
        mask.CopyInformation(small)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetNumberOfThreads(1)  # a 64 px image: threads cost more than they save
    corrector.SetMaximumNumberOfIterations([iterations] * levels)
    corrector.Execute(small, mask)
    log_field = sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(image)).astype(np.float64)
    full_mask = sitk.GetArrayFromImage(
        sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    ).astype(bool)
    log_field -= log_field[full_mask].mean() if full_mask.any() else log_field.mean()
    out = plane * np.exp(-log_field)
    return out, {"levels": levels, "iterations": iterations, "shrink": shrink}


def _nlm(plane: Plane, severity: int) -> tuple[Plane, dict[str, Any]]:
    from skimage.restoration import denoise_nl_means, estimate_sigma

    sigma = float(estimate_sigma(plane))
    h = (0.6 + 0.1 * severity) * sigma
    out = denoise_nl_means(plane, patch_size=5, patch_distance=6, h=h, sigma=sigma, fast_mode=True)
    return out, {"h": h, "sigma": sigma, "patch_size": 5, "patch_distance": 6}


def _gaussian_psf(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    psf = np.outer(g, g)
    return psf / psf.sum()


def _richardson_lucy(plane: Plane, severity: int) -> tuple[Plane, dict[str, Any]]:
    from skimage.restoration import richardson_lucy

    from monai_imc.noise import get_noise

    sigma = float(get_noise("blur").parameters(severity)["sigma"]) * min(plane.shape)
    iterations = 4 + 2 * severity
    pad = max(1, int(np.ceil(3.0 * sigma)))
    padded = np.pad(plane, pad, mode="reflect")  # no dark frame at the borders
    out = richardson_lucy(padded, _gaussian_psf(sigma), num_iter=iterations, clip=True)[pad:-pad, pad:-pad]
    return out, {"psf_sigma_px": sigma, "iterations": iterations}


def _spike_notch(plane: Plane, severity: int) -> tuple[Plane, dict[str, Any]]:
    spectrum = fft.fftshift(fft.fft2(plane))
    log_mag = np.log(np.abs(spectrum) + 1e-9)
    residual = log_mag - ndimage.median_filter(log_mag, size=7, mode="reflect")
    h, w = plane.shape
    cy, cx = h // 2, w // 2
    yy, xx = np.ogrid[:h, :w]
    residual[(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = -np.inf  # the low frequencies: the picture itself
    py, px = np.unravel_index(int(np.argmax(residual)), residual.shape)
    ratio = float(residual[py, px])
    if ratio < SPIKE_MIN_LOG_RATIO:
        return plane, {"detected": False, "log_ratio": ratio}
    radius = 1 if severity <= 3 else 2
    for y, x in ((py, px), ((2 * cy - py) % h, (2 * cx - px) % w)):  # the peak and its mirror
        spectrum[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 0.0
    out = np.real(fft.ifft2(fft.ifftshift(spectrum)))
    params = {"detected": True, "ky": int(py - cy), "kx": int(px - cx), "log_ratio": ratio, "radius": radius}
    return out, params


def _unring_axis(img: Plane, axis: int, n_shifts: int = 20, window: tuple[int, int] = (1, 3)) -> Plane:
    """Kellner's 1-D sub-voxel-shift unringing along ``axis`` of a 2-D array."""
    x = np.moveaxis(img, axis, -1)
    n = x.shape[-1]
    spectrum = fft.fft(x, axis=-1)
    freqs = fft.fftfreq(n)
    idx = np.arange(n)
    lo, hi = window
    best_tv = np.full(x.shape, np.inf)
    # per pixel, the winning shift and the shifted signal at the pixel and at its two neighbours
    best_shift, here, before, after = np.zeros(x.shape), x.copy(), x.copy(), x.copy()
    for s in np.arange(-n_shifts, n_shifts + 1) / (2.0 * n_shifts):
        shifted = np.real(fft.ifft(spectrum * np.exp(2j * np.pi * freqs * s), axis=-1))  # x(t + s)
        diff = np.abs(np.diff(shifted, axis=-1, append=shifted[..., -1:]))  # |x(t+1+s) - x(t+s)| at t
        cums = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(diff, axis=-1)], axis=-1)

        def span(a: np.ndarray, b: np.ndarray, cums: np.ndarray = cums) -> np.ndarray:
            return cums[..., np.clip(b, 0, n)] - cums[..., np.clip(a, 0, n)]

        # Kellner's windows: |x(t+k) - x(t+k+1)| for k in [lo, hi] right of t, and their mirror left of it
        tv = np.minimum(span(idx + lo, idx + hi + 1), span(idx - hi - 1, idx - lo))
        better = tv < best_tv
        best_tv = np.where(better, tv, best_tv)
        best_shift = np.where(better, s, best_shift)
        here = np.where(better, shifted, here)
        before = np.where(better, np.concatenate([shifted[..., :1], shifted[..., :-1]], axis=-1), before)
        after = np.where(better, np.concatenate([shifted[..., 1:], shifted[..., -1:]], axis=-1), after)
    # back to the grid: here(t) samples x at t + s, before(t) at t - 1 + s, after(t) at t + 1 + s
    out = np.where(
        best_shift > 0,
        (1 - best_shift) * here + best_shift * before,
        (1 + best_shift) * here - best_shift * after,
    )
    return np.moveaxis(out, -1, axis)


def _unring(plane: Plane, severity: int) -> tuple[Plane, dict[str, Any]]:
    out = _unring_axis(_unring_axis(plane, 1), 0)
    return out, {"shifts": 41, "window_px": "1-3", "axes": "rows, then columns"}


def _deblock(plane: Plane, severity: int) -> tuple[Plane, dict[str, Any]]:
    from skimage.restoration import denoise_tv_chambolle

    weight = 0.01 * severity
    return denoise_tv_chambolle(plane, weight=weight), {"weight": weight}


#: artifact -> (action name, correction of one float [0, 1] plane at a severity).
CORRECTIONS: dict[str, tuple[str, Correction]] = {
    "bias_field": ("N4 bias field correction", _n4),
    "rician": ("non-local means", _nlm),
    "low_dose": ("non-local means", _nlm),
    "blur": ("Richardson-Lucy deconvolution", _richardson_lucy),
    "spike": ("k-space spike notch", _spike_notch),
    "gibbs": ("Gibbs unringing (local sub-voxel shifts)", _unring),
    "jpeg": ("JPEG deblocking (total variation)", _deblock),
}
#: The corrections a :class:`Restorer` applies by default: those that brought the benchmark's noisy views
#: closer to the clean ones on validation images (``docs/restore.md``).
DEFAULT_CORRECTIONS: tuple[str, ...] = ("bias_field", "rician", "low_dose", "blur", "spike", "jpeg")
#: artifacts known to have no classical correction here.
NOT_CORRECTED: tuple[str, ...] = ("motion", "ghosting")


# ---------------------------------------------------------------------------------------- the step
def _as_planes(view: ImageInput) -> tuple[np.ndarray, float, float]:
    """``(C, H, W)`` float64 in [0, 1] and the range mapped from (uint8: 0..255, else the view's min / max)."""
    arr = np.asarray(view)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) view, got shape {arr.shape}")
    chw = np.moveaxis(arr, -1, 0).astype(np.float64)
    if arr.dtype == np.uint8:
        low, high = 0.0, 255.0
    else:
        low, high = float(chw.min()), float(chw.max())
    return (chw - low) / max(high - low, 1e-12), low, high


def _from_planes(chw: np.ndarray, like: np.ndarray, low: float, high: float) -> np.ndarray:
    out = np.clip(chw, 0.0, 1.0) * (high - low) + low
    out = np.moveaxis(out, 0, -1)
    if like.ndim == 2:
        out = out[..., 0]
    if np.issubdtype(like.dtype, np.integer):
        return np.rint(out).astype(like.dtype)
    return out.astype(like.dtype)


def restore_view(view: ImageInput, noise: str, severity: int) -> tuple[ImageInput, Restoration]:
    """Apply the correction of ``noise`` at ``severity`` to ``view`` (the true type given: no perceiver).

    A grey view stored as three equal channels is corrected once. Unknown types, types without a correction
    and a spike that is not found in the spectrum return ``view`` itself.

    Raises:
        ValueError: a view that is not ``(H, W)`` or ``(H, W, C)``, or a severity outside 1..5.
    """
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be 1..5, got {severity}")
    if noise in NOT_CORRECTED:
        return view, Restoration(False, noise=noise, severity=severity, reason=f"no restoration for {noise}")
    if noise not in CORRECTIONS:
        return view, Restoration(False, noise=noise, severity=severity, reason=f"unknown artifact {noise!r}")
    arr = np.asarray(view)
    require_restore(f"the {noise} correction", [noise])
    if min(arr.shape[:2]) < MIN_SIDE:
        return view, Restoration(False, noise=noise, severity=severity, reason="view too small to restore")
    action, correct = CORRECTIONS[noise]
    chw, low, high = _as_planes(arr)
    grey = all(np.array_equal(chw[0], c) for c in chw[1:])
    out = np.empty_like(chw)
    params: dict[str, Any] = {}
    for c in range(1 if grey else chw.shape[0]):
        out[c], found = correct(chw[c], int(severity))
        params = params or found
    if grey:
        out[1:] = out[0]
    if params.get("detected") is False:
        reason = (
            f"no spike found in the spectrum (log ratio {params['log_ratio']:.2f} < {SPIKE_MIN_LOG_RATIO})"
        )
        return view, Restoration(False, noise=noise, severity=severity, reason=reason)
    params.pop("detected", None)
    restored = _from_planes(out, arr, low, high)
    return restored, Restoration(True, action, noise, int(severity), _rounded(params))


class Restorer:
    """Perceiver-guided restoration of the views the perceiver flagged (see the module docstring).

    A bundle names it in ``configs/inference.json`` (``restore``) and switches it on with ``enabled``.

    Args:
        enabled: restore flagged views (default off: the pipeline's answer is then the plain model's).
        noises: restore only these artifacts (default: :data:`DEFAULT_CORRECTIONS`; any of
            :data:`CORRECTIONS`).

    Raises:
        OptionalImportError: ``enabled`` and the ``restore`` extra is not installed.
        ValueError: a noise in ``noises`` without a correction.
    """

    def __init__(self, enabled: bool = False, noises: Sequence[str] | None = None) -> None:
        self.enabled = bool(enabled)
        unknown = [n for n in noises or () if n not in CORRECTIONS]
        if unknown:
            raise ValueError(f"no correction for {unknown}; corrections exist for {sorted(CORRECTIONS)}")
        self.noises = tuple(noises) if noises is not None else DEFAULT_CORRECTIONS
        if self.enabled:
            require_restore("the bundle's restore step", self.noises)

    def restore(self, view: ImageInput, perception: Perception) -> tuple[ImageInput, Restoration]:
        """The view corrected for the perceived artifact and what was done; ``view`` itself when the
        perception is clean or not assessable, or names an artifact without a (chosen) correction."""
        if perception.verdict != ARTIFACT or perception.noise is None or perception.severity is None:
            return view, Restoration(False, reason=perception.verdict)
        if perception.noise in CORRECTIONS and perception.noise not in self.noises:
            reason = f"no restoration for {perception.noise} (not among the chosen corrections)"
            return view, Restoration(
                False, noise=perception.noise, severity=perception.severity, reason=reason
            )
        return restore_view(view, perception.noise, perception.severity)

    def __repr__(self) -> str:
        return f"Restorer(enabled={self.enabled}, noises={list(self.noises)})"

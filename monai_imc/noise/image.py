"""Image artifacts that occur in radiology, as MONAI transforms with five severity levels.

Every transform takes a channel-first image, ``(C, H, W)``, or volume, ``(C, H, W, D)``, as a numpy
array or a torch tensor in any intensity range, and returns the same type, shape and dtype, with values
inside the input's [min, max] range. Internally the image is mapped to [0, 1]; physical parameters are
given on that scale or relative to the image size, so a level looks alike on a 64 px phantom and on a
2,000 px radiograph. In a volume, k-space artifacts and blur act in the (H, W) plane of every slice.

Example::

    from monai_imc.noise.image import MotionArtifact, MotionArtifactd

    noisy = MotionArtifact(severity=3, seed=0)(ct_slice)          # array in, array out
    sample = MotionArtifactd(keys="image", severity=3)({"image": ct_slice})
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torchio as tio
from monai.transforms import GaussianSmooth, GibbsNoise, RandRicianNoise
from PIL import Image
from scipy import ndimage

from monai_imc.noise.base import Noise, NoiseDict
from monai_imc.noise.registry import register_noise
from monai_imc.noise.unit_range import ImageLike, from_unit, to_unit

__all__ = [
    "BiasFieldArtifact",
    "BiasFieldArtifactd",
    "BlurArtifact",
    "BlurArtifactd",
    "GhostingArtifact",
    "GhostingArtifactd",
    "GibbsArtifact",
    "GibbsArtifactd",
    "ImageArtifact",
    "JPEGArtifact",
    "JPEGArtifactd",
    "LowDoseArtifact",
    "LowDoseArtifactd",
    "MotionArtifact",
    "MotionArtifactd",
    "RicianNoiseArtifact",
    "RicianNoiseArtifactd",
    "SpikeArtifact",
    "SpikeArtifactd",
]

class ImageArtifact(Noise):
    """Base of the image artifacts: range, dtype and type handling around a [0, 1] kernel.

    Subclasses implement ``_draw(unit) -> dict`` (severity-independent random draws) and
    ``_apply(unit, params, draw) -> unit`` (the artifact on a float32 [0, 1] channel-first array).

    Args:
        severity: level 1..5.
        seed: seed of the random state.
    """

    modality = "image"
    dicom_modalities: ClassVar[tuple[str, ...]] = ()
    """The DICOM modalities whose acquisition makes this artifact (``()``: any): the perceiver does not
    name it for an image of another modality."""

    def __init__(self, severity: int = 3, seed: int | None = 0) -> None:
        super().__init__(severity, seed)
        self._drawn: dict[str, Any] | None = None

    def randomize(self, data: np.ndarray) -> None:
        """Draw the artifact's random state for an image of ``data``'s shape (severity-independent)."""
        self._drawn = self._draw(data)

    def __call__(self, img: ImageLike, randomize: bool = True) -> ImageLike:
        """Corrupt ``img`` (channel-first, numpy or torch); ``randomize=False`` reuses the last draw."""
        unit, low, high = to_unit(img)
        if randomize or self._drawn is None:
            self.randomize(unit)
        out = self._apply(unit, self.params, self._drawn or {})
        return from_unit(out, img, low, high)

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        return {}

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError


def _child_seed(rng: np.random.RandomState) -> int:
    return int(rng.randint(0, 2**31 - 1))


def _with_depth(unit: np.ndarray) -> torch.Tensor:
    """A (C, H, W, D) tensor for torchio: 2D images get a depth of one."""
    t = torch.from_numpy(np.ascontiguousarray(unit))
    return t[..., None] if t.ndim == 3 else t


def _strip_depth(t: torch.Tensor, unit: np.ndarray) -> np.ndarray:
    out = t.numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return out[..., 0] if unit.ndim == 3 else out


def _per_plane(unit: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to every (H, W) plane of a (C, H, W) or (C, H, W, D) array."""
    out = np.empty_like(unit)
    if unit.ndim == 3:
        for c in range(unit.shape[0]):
            out[c] = fn(unit[c])
    else:
        for c in range(unit.shape[0]):
            for z in range(unit.shape[3]):
                out[c, :, :, z] = fn(unit[c, :, :, z])
    return out


@register_noise
class MotionArtifact(ImageArtifact):
    """MRI motion: the patient moves during part of the scan (rigid in-plane motion, segmented k-space).

    k-space lines along a phase-encoding axis are acquired in order. The patient holds still while the
    k-space centre is acquired (the image contrast) and takes two other rigid poses, drawn from the seed
    (up to ``degrees`` of rotation and ``translation`` as a fraction of the field of view), at the start
    and at the end of the scan. ``moved_fraction`` of the lines on each side of k-space come from the
    moved poses; it grows with the level, so level k+1 corrupts every line level k did and more. The
    result is the magnitude image, with ghosts and smearing along the phase-encoding axis.
    """

    name = "motion"
    dicom_modalities = ("MR",)
    cause = "patient motion during MRI k-space acquisition (breathing, restlessness): ghosts and smearing"
    levels = (
        {"moved_fraction": 0.2, "degrees": 10.0, "translation": 0.07},
        {"moved_fraction": 0.3, "degrees": 10.0, "translation": 0.07},
        {"moved_fraction": 0.37, "degrees": 10.0, "translation": 0.07},
        {"moved_fraction": 0.42, "degrees": 10.0, "translation": 0.07},
        {"moved_fraction": 0.46, "degrees": 10.0, "translation": 0.07},
    )

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        return {
            "axis": int(self.R.randint(0, 2)),
            "angles": self.R.uniform(0.5, 1.0, size=2) * self.R.choice([-1.0, 1.0], size=2),
            "shifts": self.R.uniform(-1.0, 1.0, size=(2, 2)),
        }

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        axis = 1 + int(draw["axis"])  # phase-encoding axis: H (1) or W (2)
        n_lines = unit.shape[axis]
        n_moved = round(params["moved_fraction"] * n_lines)
        if n_moved == 0:
            return unit
        kspace = np.fft.fftshift(np.fft.fft2(unit, axes=(1, 2)), axes=(1, 2))
        fov = float(min(unit.shape[1:3]))
        for pose, lines in enumerate((slice(0, n_moved), slice(n_lines - n_moved, n_lines))):
            angle = params["degrees"] * draw["angles"][pose]
            shift = params["translation"] * fov * draw["shifts"][pose]
            moved = _rigid_inplane(unit, angle, shift)
            k_moved = np.fft.fftshift(np.fft.fft2(moved, axes=(1, 2)), axes=(1, 2))
            index = [slice(None)] * unit.ndim
            index[axis] = lines
            kspace[tuple(index)] = k_moved[tuple(index)]
        image = np.fft.ifft2(np.fft.ifftshift(kspace, axes=(1, 2)), axes=(1, 2))
        return np.abs(image).astype(np.float32)


def _rigid_inplane(unit: np.ndarray, degrees: float, shift: np.ndarray) -> np.ndarray:
    """Rotate by ``degrees`` about the plane's centre and shift by ``shift`` (pixels) every (H, W) plane."""
    theta = np.deg2rad(degrees)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = (np.array(unit.shape[1:3]) - 1) / 2.0

    def move(plane: np.ndarray) -> np.ndarray:
        offset = centre - rot @ centre - rot @ np.asarray(shift)
        return ndimage.affine_transform(plane, rot, offset=offset, order=1, mode="nearest")

    return _per_plane(unit, move)


@register_noise
class GhostingArtifact(ImageArtifact):
    """MRI ghosting: periodic k-space line errors (pulsation, a coil fault) make shifted ghost copies.

    Built on :class:`torchio.Ghosting`; the number of ghosts and the phase-encoding axis are drawn from the
    seed, the ghost ``intensity`` grows with the level.
    """

    name = "ghosting"
    dicom_modalities = ("MR",)
    cause = "periodic motion (pulsating vessels, cardiac or respiratory cycles) along the MRI phase-encoding axis"
    levels = (
        {"intensity": 0.2, "restore": 0.02},
        {"intensity": 0.4, "restore": 0.02},
        {"intensity": 0.6, "restore": 0.02},
        {"intensity": 0.8, "restore": 0.02},
        {"intensity": 1.0, "restore": 0.02},
    )

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        return {"num_ghosts": int(self.R.randint(2, 7)), "axis": int(self.R.randint(0, 2))}

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        ghosting = tio.Ghosting(
            num_ghosts=draw["num_ghosts"], axis=draw["axis"], intensity=params["intensity"], restore=params["restore"]
        )
        return _strip_depth(ghosting(_with_depth(unit)), unit)


@register_noise
class SpikeArtifact(ImageArtifact):
    """MRI k-space spike (herringbone): one corrupted k-space sample adds a stripe pattern.

    Built on :class:`torchio.Spike`; the spike position is drawn from the seed (away from the k-space
    centre). ``amplitude`` is the stripes' amplitude as a fraction of the intensity range (torchio's
    intensity, relative to the spectrum's maximum, is derived from it), so dark and bright images get
    alike stripes.
    """

    name = "spike"
    dicom_modalities = ("MR",)
    cause = "a k-space spike from electrostatic discharge or a loose RF connection in the MRI scanner"
    levels = (
        {"amplitude": 0.015},
        {"amplitude": 0.03},
        {"amplitude": 0.05},
        {"amplitude": 0.075},
        {"amplitude": 0.11},
    )

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        offset = self.R.uniform(0.02, 0.08, size=3) * self.R.choice([-1.0, 1.0], size=3)
        position = 0.5 + offset
        if unit.ndim == 3:
            position[2] = 0.0
        return {"position": position[None, :]}

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        spectrum_max = float(np.abs(np.fft.fft2(unit, axes=(1, 2))).max()) or 1.0
        n_pixels = unit.shape[1] * unit.shape[2]
        intensity = params["amplitude"] * n_pixels / spectrum_max
        spike = tio.Spike(spikes_positions=draw["position"], intensity=intensity)
        return _strip_depth(spike(_with_depth(unit)), unit)


@register_noise
class BiasFieldArtifact(ImageArtifact):
    """MRI bias field: a smooth multiplicative intensity inhomogeneity from the receive coils.

    Built on :class:`torchio.BiasField` (the exponential of a polynomial of ``order`` 3); the polynomial's
    direction is drawn from the seed, its ``coefficient`` scale grows with the level. The constant term is
    zero, so the artifact is the inhomogeneity, not a global gain.
    """

    name = "bias_field"
    dicom_modalities = ("MR",)
    cause = "B1 / receive-coil inhomogeneity in MRI: smooth shading across the field of view"
    levels = (
        {"coefficient": 0.15, "order": 3},
        {"coefficient": 0.3, "order": 3},
        {"coefficient": 0.5, "order": 3},
        {"coefficient": 0.7, "order": 3},
        {"coefficient": 0.95, "order": 3},
    )

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        order = int(self.levels[-1]["order"])
        n_coefficients = (order + 1) * (order + 2) * (order + 3) // 6
        direction = self.R.uniform(-1.0, 1.0, size=n_coefficients)
        direction[0] = 0.0
        return {"direction": direction}

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        coefficients = (params["coefficient"] * draw["direction"]).tolist()
        bias = tio.BiasField(coefficients=coefficients, order=params["order"])
        return _strip_depth(bias(_with_depth(unit)), unit)


@register_noise
class GibbsArtifact(ImageArtifact):
    """Gibbs ringing: truncated k-space sampling rings at sharp edges.

    Built on :class:`monai.transforms.GibbsNoise`; ``alpha`` (the share of k-space cut) grows with the level.
    Deterministic: the seed is accepted for a uniform interface.
    """

    name = "gibbs"
    dicom_modalities = ("MR",)
    cause = "k-space truncation (low acquisition matrix) in MRI: ringing parallel to sharp edges"
    levels = ({"alpha": 0.5}, {"alpha": 0.65}, {"alpha": 0.75}, {"alpha": 0.83}, {"alpha": 0.89})

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        out = GibbsNoise(alpha=params["alpha"])(torch.from_numpy(unit))
        return np.asarray(torch.as_tensor(out).numpy(), dtype=np.float32)


@register_noise
class RicianNoiseArtifact(ImageArtifact):
    """Rician noise: thermal noise of a low-SNR MRI magnitude image.

    Built on :class:`monai.transforms.RandRicianNoise` with a fixed ``std`` per level (on the [0, 1]
    scale); the noise field is drawn from the seed once and scaled by the level.
    """

    name = "rician"
    dicom_modalities = ("MR",)
    cause = "thermal noise in low-SNR MRI (fast scans, high resolution, low field) in magnitude images"
    levels = ({"std": 0.02}, {"std": 0.04}, {"std": 0.07}, {"std": 0.10}, {"std": 0.15})

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        return {"seed": _child_seed(self.R)}

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        rician = RandRicianNoise(prob=1.0, std=params["std"], sample_std=False)
        rician.set_random_state(seed=draw["seed"])
        out = rician(torch.from_numpy(unit))
        return np.asarray(torch.as_tensor(out).numpy(), dtype=np.float32)


@register_noise
class LowDoseArtifact(ImageArtifact):
    """Low-dose quantum noise: Poisson photon statistics of an X-ray transmission measurement.

    The displayed intensity is read as attenuation: ``I0 * exp(-mu * x)`` photons reach the detector, a
    Poisson count is drawn and converted back, so dense (bright) regions, which stop most photons, get the
    most noise, as in a low-dose radiograph or CT. Fewer ``photons`` (``I0``) per level means more noise.
    """

    name = "low_dose"
    dicom_modalities = ("CT", "CR", "DX")
    cause = "too few X-ray photons (low-dose CT, portable or pediatric radiographs): quantum mottle"
    levels = (
        {"photons": 6000.0, "mu": 3.0},
        {"photons": 2000.0, "mu": 3.0},
        {"photons": 700.0, "mu": 3.0},
        {"photons": 250.0, "mu": 3.0},
        {"photons": 90.0, "mu": 3.0},
    )

    def _draw(self, unit: np.ndarray) -> dict[str, Any]:
        return {"seed": _child_seed(self.R)}

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        photons, mu = float(params["photons"]), float(params["mu"])
        counts = np.random.default_rng(draw["seed"]).poisson(photons * np.exp(-mu * unit.astype(np.float64)))
        return (-np.log(np.maximum(counts, 0.5) / photons) / mu).astype(np.float32)


@register_noise
class BlurArtifact(ImageArtifact):
    """Blur: loss of sharpness, a Gaussian point-spread function in the image plane.

    Built on :class:`monai.transforms.GaussianSmooth`; ``sigma`` is a fraction of the smaller in-plane
    size, so a level blurs alike at any resolution. Deterministic.
    """

    name = "blur"
    cause = "detector or focal-spot unsharpness, patient motion during a radiograph, defocused screen captures"
    levels = ({"sigma": 0.003}, {"sigma": 0.005}, {"sigma": 0.008}, {"sigma": 0.012}, {"sigma": 0.017})

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        sigma_px = float(params["sigma"]) * min(unit.shape[1:3])
        sigma = (sigma_px, sigma_px) if unit.ndim == 3 else (sigma_px, sigma_px, 1e-3)
        out = GaussianSmooth(sigma=sigma)(torch.from_numpy(unit))
        return np.asarray(torch.as_tensor(out).numpy(), dtype=np.float32)


@register_noise
class JPEGArtifact(ImageArtifact):
    """Lossy JPEG compression of 8-bit exports (block artifacts, lost fine detail and bit depth).

    Each (H, W) plane is quantised to 8 bits and encoded with Pillow at the level's ``quality``.
    Deterministic.
    """

    name = "jpeg"
    cause = "lossy 8-bit JPEG export of images (teleradiology, screenshots, images sent by messenger)"
    levels = ({"quality": 60}, {"quality": 35}, {"quality": 20}, {"quality": 10}, {"quality": 4})

    def _apply(self, unit: np.ndarray, params: Mapping[str, Any], draw: Mapping[str, Any]) -> np.ndarray:
        quality = int(params["quality"])

        def compress(plane: np.ndarray) -> np.ndarray:
            buffer = io.BytesIO()
            Image.fromarray(np.rint(plane * 255.0).astype(np.uint8), mode="L").save(
                buffer, format="JPEG", quality=quality
            )
            buffer.seek(0)
            return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0

        return _per_plane(unit, compress)


class MotionArtifactd(NoiseDict):
    """Dictionary twin of :class:`MotionArtifact`."""

    array_class = MotionArtifact


class GhostingArtifactd(NoiseDict):
    """Dictionary twin of :class:`GhostingArtifact`."""

    array_class = GhostingArtifact


class SpikeArtifactd(NoiseDict):
    """Dictionary twin of :class:`SpikeArtifact`."""

    array_class = SpikeArtifact


class BiasFieldArtifactd(NoiseDict):
    """Dictionary twin of :class:`BiasFieldArtifact`."""

    array_class = BiasFieldArtifact


class GibbsArtifactd(NoiseDict):
    """Dictionary twin of :class:`GibbsArtifact`."""

    array_class = GibbsArtifact


class RicianNoiseArtifactd(NoiseDict):
    """Dictionary twin of :class:`RicianNoiseArtifact`."""

    array_class = RicianNoiseArtifact


class LowDoseArtifactd(NoiseDict):
    """Dictionary twin of :class:`LowDoseArtifact`."""

    array_class = LowDoseArtifact


class BlurArtifactd(NoiseDict):
    """Dictionary twin of :class:`BlurArtifact`."""

    array_class = BlurArtifact


class JPEGArtifactd(NoiseDict):
    """Dictionary twin of :class:`JPEGArtifact`."""

    array_class = JPEGArtifact

"""Local noise: any image noise of the registry applied inside a region only (a lesion, or a seeded rectangle).

A local artifact over the finding is what hides it (MMedPO perturbs the lesion region for that reason). The
wrapped noise is computed on the whole image, exactly as the global noise with the same seed, and blended
into the clean image through the region's weight map: a k-space noise (spike, ghosting, motion) stays itself
inside the region, and the pixels outside are the clean image's, bit for bit.

The region is a mask (any 2D array; non-zero is inside), resized to the image's plane when its size
differs (a pixel the region touches after resizing is inside), or ``None``: a rectangle drawn from the seed
covering ``fraction`` (10-20 %) of the plane, aspect ratio 1:2 to 2:1, anywhere in the plane. In a volume
the region holds for every slice.

Edge: smooth, inward only. The weight is 1 deeper than ``feather`` (a share of the plane's smaller side,
default 2 %, at most half the region's own depth) inside the region and falls linearly to 0 at its
border, so there is no hard seam a perceiver could take for an edge, and nothing outside the region
changes. ``feather=0`` gives a hard edge.

Names: ``local-<noise>`` (``local-motion``, ``local-bias_field``) is a registry name
(:func:`~monai_imc.noise.registry.get_noise` resolves it, with the seeded random region); the benchmark
passes a SLAKE image's lesion region (:func:`monai_imc.data.lesion_region`). ``list_noises()`` lists the
global noises only; :func:`local_noises` lists the local ones.

Example::

    from monai_imc.noise.local import LocalNoise, LocalNoised

    noisy = LocalNoise("spike", severity=3, seed=0)(image)                # seeded random rectangle
    noisy = LocalNoise("spike", severity=3, seed=0, region=mask)(image)   # inside a lesion mask
    sample = LocalNoised(keys="image", noise="blur", region_key="lesion")({"image": image, "lesion": mask})
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from functools import cache
from typing import Any, ClassVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from monai.utils.type_conversion import convert_to_dst_type
from PIL import Image
from scipy import ndimage

from monai_imc.noise.base import Noise
from monai_imc.noise.local_names import LOCAL_PREFIX, base_noise, is_local_noise, local_noises, with_local
from monai_imc.noise.registry import NoiseSpec, get_noise, list_noises, local_class_name
from monai_imc.noise.unit_range import ImageLike

__all__ = [
    "LOCAL_PREFIX",
    "LocalNoise",
    "LocalNoised",
    "base_noise",
    "is_local_noise",
    "local_noise_name",
    "local_noises",
    "local_spec",
    "random_rectangle",
    "region_weights",
    "with_local",
]

DEFAULT_FRACTION = (0.10, 0.20)
DEFAULT_FEATHER = 0.02


def local_noise_name(noise: str) -> str:
    """``local-<noise>`` for an image noise of the registry.

    Raises:
        ValueError: unknown, a text noise or already local.
    """
    _check_base(noise)
    return LOCAL_PREFIX + noise


def _check_base(noise: str) -> NoiseSpec:
    if is_local_noise(noise):
        raise ValueError(f"noise {noise!r} is already local")
    spec = get_noise(noise)
    if spec.modality != "image":
        raise ValueError(f"local noise needs an image noise; {noise!r} is a text noise")
    return spec


def random_rectangle(
    shape: tuple[int, int], rng: np.random.RandomState, fraction: tuple[float, float] = DEFAULT_FRACTION
) -> np.ndarray:
    """A boolean ``(H, W)`` mask: a rectangle of ``fraction`` of the plane's area, aspect 1:2 to 2:1, at a
    random place (all draws from ``rng``)."""
    area, log_aspect, u, v = (
        rng.uniform(*fraction),
        rng.uniform(-np.log(2), np.log(2)),
        rng.rand(),
        rng.rand(),
    )
    return _rectangle(shape, (area, float(np.exp(log_aspect)), u, v))


def _rectangle(shape: tuple[int, int], draw: tuple[float, float, float, float]) -> np.ndarray:
    height, width = shape
    area, aspect, u, v = draw
    h = int(np.clip(round(np.sqrt(area * height * width / aspect)), 1, height))
    w = int(np.clip(round(area * height * width / h), 1, width))
    top, left = round(u * (height - h)), round(v * (width - w))
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + h, left : left + w] = True
    return mask


def _fit(region: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A boolean region of the image's plane ``shape`` (H, W) or volume (H, W, D)."""
    mask = np.asarray(region.detach().cpu() if isinstance(region, torch.Tensor) else region)
    if mask.ndim == 3 and mask.shape[0] == 1 and mask.shape[1:] == shape[:2]:
        mask = mask[0]  # a channel-first (1, H, W) mask
    if mask.ndim == 2 and mask.shape != shape[:2]:
        resized = Image.fromarray((mask != 0).astype(np.float32), mode="F").resize(
            (shape[1], shape[0]), Image.Resampling.BOX
        )
        mask = np.asarray(resized) > 0
    if mask.shape not in (shape[:2], shape):
        raise ValueError(f"region of shape {mask.shape} does not fit an image plane of shape {shape[:2]}")
    mask = mask != 0
    if not mask.any():
        raise ValueError("the region is empty: no pixel to corrupt")
    return mask


def region_weights(mask: np.ndarray, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """Blend weights of a boolean region: 1 deeper than ``feather`` x the plane's smaller side inside it
    (at most half the region's own depth, so a small lesion keeps a fully corrupted core), falling linearly
    to 0 at its border (inward only), 0 outside; a ramp of one pixel or less, or ``feather=0``: the mask."""
    if feather * min(mask.shape[:2]) <= 1.0:
        return mask.astype(np.float64)
    if mask.ndim == 2:
        depth = ndimage.distance_transform_edt(mask)
    else:  # per slice, as the region holds in each plane
        depth = np.stack(
            [ndimage.distance_transform_edt(mask[..., z]) for z in range(mask.shape[2])], axis=-1
        )
    width = min(feather * min(mask.shape[:2]), float(depth.max()) / 2.0)  # a small region keeps a full core
    if width <= 1.0:
        return mask.astype(np.float64)
    return np.clip(depth / width, 0.0, 1.0)


class LocalNoise(Noise):
    """An image noise of the registry applied inside a region (see the module docstring).

    Args:
        noise: an image noise name of the registry (``"motion"``).
        severity: level 1..5 of the wrapped noise.
        seed: seeds the wrapped noise (the same draws as the global noise with this seed) and the random
            rectangle.
        region: a mask (2D, or the volume's (H, W, D); non-zero inside), resized to the image's plane when
            its size differs; ``None``: a seeded random rectangle.
        fraction: the random rectangle's share of the plane's area, ``(low, high)``.
        feather: width of the smooth edge, a share of the plane's smaller side (0: hard edge).

    Raises:
        ValueError: an unknown or text noise, a severity outside 1..5, a fraction outside (0, 1] or a
            negative feather; when called, an empty region or one that does not fit the image.
    """

    modality = "image"
    name: ClassVar[str] = "local"
    cause: ClassVar[str] = "an image artifact inside a region only (over a lesion, or a part of the field)"
    levels: ClassVar[tuple[Mapping[str, Any], ...]] = ()

    def __init__(
        self,
        noise: str,
        severity: int = 3,
        seed: int | None = 0,
        region: Any = None,
        fraction: tuple[float, float] = DEFAULT_FRACTION,
        feather: float = DEFAULT_FEATHER,
    ) -> None:
        spec = _check_base(noise)
        if not 0.0 < fraction[0] <= fraction[1] <= 1.0:
            raise ValueError(f"fraction must satisfy 0 < low <= high <= 1, got {fraction}")
        if feather < 0:
            raise ValueError(f"feather must be >= 0, got {feather}")
        self.noise = spec.name
        self.inner = spec.make(severity, seed)
        self.region = region
        self.fraction = (float(fraction[0]), float(fraction[1]))
        self.feather = float(feather)
        self._draw: tuple[float, float, float, float] | None = None
        super().__init__(severity, seed)

    @property
    def params(self) -> dict[str, Any]:
        """The wrapped noise's parameters at the current severity."""
        return self.inner.params

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> LocalNoise:
        """Seed the rectangle's draws and the wrapped noise (MONAI's ``Randomizable`` interface)."""
        super().set_random_state(seed, state)
        if hasattr(self, "inner"):
            self.inner.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw the random rectangle (area, aspect, place), whatever the region and severity."""
        area = self.R.uniform(*self.fraction)
        aspect = float(np.exp(self.R.uniform(-np.log(2), np.log(2))))
        self._draw = (area, aspect, self.R.rand(), self.R.rand())

    def mask(self, shape: tuple[int, ...], region: Any = None) -> np.ndarray:
        """The boolean region for an image plane (H, W) or volume (H, W, D) of ``shape``: ``region`` (else the
        transform's), or the last drawn rectangle."""
        region = self.region if region is None else region
        if region is not None:
            return _fit(region, tuple(shape))
        if self._draw is None:
            self.randomize()
        return _rectangle((int(shape[0]), int(shape[1])), self._draw)  # type: ignore[arg-type]

    def __call__(self, img: ImageLike, randomize: bool = True, region: Any = None) -> ImageLike:
        """Corrupt ``img`` (channel-first) inside the region; ``region`` overrides the transform's for this
        call; ``randomize=False`` reuses the last draws."""
        if randomize or self._draw is None:
            self.randomize()
        noisy = self.inner(img, randomize=randomize)
        clean = _numpy(img)
        weights = region_weights(self.mask(clean.shape[1:], region), self.feather)
        weights = weights[None] if weights.ndim == clean.ndim - 1 else weights[None, ..., None]
        out = clean + weights * (_numpy(noisy) - clean)
        if np.issubdtype(_dtype(img), np.integer) or (
            isinstance(img, torch.Tensor) and not img.is_floating_point()
        ):
            out = np.rint(out)
        out = np.where(weights > 0, out, clean)
        result, *_ = convert_to_dst_type(out, dst=img, dtype=img.dtype)
        return result

    def __repr__(self) -> str:
        where = "random rectangle" if self.region is None else "given region"
        return f"LocalNoise({self.noise!r}, severity={self.severity}, {where}, feather={self.feather})"


def _numpy(img: ImageLike) -> np.ndarray:
    arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    return arr.astype(np.float64)


def _dtype(img: ImageLike) -> np.dtype:
    return img.dtype if isinstance(img, np.ndarray) else np.dtype(np.float32)


class LocalNoised(Randomizable, MapTransform):
    """Dictionary twin of :class:`LocalNoise`: corrupts ``keys`` inside a region.

    Args:
        keys: keys of the images to corrupt.
        noise: an image noise name of the registry.
        severity: level 1..5.
        seed: seed of the random state.
        region: a fixed region (see :class:`LocalNoise`); ``None``: ``region_key`` or the random rectangle.
        region_key: the key of the data dictionary holding each sample's region (a missing key or ``None``
            value: the random rectangle).
        fraction / feather: as for :class:`LocalNoise`.
        allow_missing_keys: do not raise when a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        noise: str,
        severity: int = 3,
        seed: int | None = 0,
        region: Any = None,
        region_key: Hashable | None = None,
        fraction: tuple[float, float] = DEFAULT_FRACTION,
        feather: float = DEFAULT_FEATHER,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.region_key = region_key
        self.transform = LocalNoise(noise, severity, seed, region=region, fraction=fraction, feather=feather)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> LocalNoised:
        """Seed the wrapped transform."""
        super().set_random_state(seed, state)
        if hasattr(self, "transform"):
            self.transform.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw the wrapped transform's random rectangle."""
        self.transform.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        region = d.get(self.region_key) if self.region_key is not None else None
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], region=region)
        return d


@cache
def _bound_class(noise: str) -> type[LocalNoise]:
    spec = _check_base(noise)

    def __init__(
        self: LocalNoise, severity: int = 3, seed: int | None = 0, region: Any = None, **kw: Any
    ) -> None:
        LocalNoise.__init__(self, noise, severity, seed, region=region, **kw)

    return type(
        local_class_name(noise),
        (LocalNoise,),
        {
            "__init__": __init__,
            "__module__": __name__,
            "__doc__": f"``{noise}`` inside a region (:class:`LocalNoise` bound to ``{noise}``).",
            "name": LOCAL_PREFIX + noise,
            "cause": f"{noise} inside a region only (a lesion, else a seeded rectangle)",
            "levels": spec.levels,
        },
    )


def local_spec(name: str) -> NoiseSpec:
    """The registry entry of ``local-<noise>`` (:func:`monai_imc.noise.registry.get_noise` makes it).

    Raises:
        ValueError: not a ``local-`` name, or the wrapped noise is unknown, local or a text noise.
    """
    if not is_local_noise(name):
        raise ValueError(f"{name!r} is not a local noise name (local-<image noise>)")
    return get_noise(name)


def __getattr__(attr: str) -> type[LocalNoise]:
    """``LocalBlurNoise`` and the like: the bound class of every registered image noise (PEP 562), which the
    registry's entries of the local noises name."""
    for noise in list_noises("image"):
        if local_class_name(noise) == attr:
            return _bound_class(noise)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")

"""Inputs of the HF adapters: the device and dtype defaults, image lists, one generation's result."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from monai_imc.models.base import ImageInput, VisionFeatures

__all__ = ["Generation", "default_device", "resolve_dtype"]


def default_device() -> torch.device:
    """The device a model goes to when none is given: the first CUDA GPU if there is one, else the CPU.

    Returns:
        The device.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """Resolve the weights' dtype: bfloat16 on GPU, float32 on CPU, unless one is given.

    Args:
        dtype: a torch dtype, its name (``"bfloat16"``, ``"float16"``, ``"float32"``) or ``None``.
        device: where the model will run.

    Returns:
        The dtype.

    Raises:
        ValueError: if ``dtype`` names no floating point torch dtype.
    """
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"Unknown dtype {dtype!r}; use e.g. 'bfloat16', 'float16' or 'float32'.")
    return resolved


def _as_image_list(images: ImageInput | Sequence[ImageInput]) -> list[Any]:
    """Normalise the images argument to a non-empty list of RGB PIL images or numpy arrays."""
    from PIL import Image

    if isinstance(images, (Image.Image, np.ndarray)):
        images = [images]
    if not isinstance(images, (list, tuple)):
        raise TypeError(
            f"images must be a PIL image, a numpy array or a list of them; got {type(images).__name__}."
        )
    if len(images) == 0:
        raise ValueError("images is empty; pass at least one image.")
    out: list[Any] = []
    for i, image in enumerate(images):
        if isinstance(image, Image.Image):
            out.append(image if image.mode == "RGB" else image.convert("RGB"))
        elif isinstance(image, np.ndarray):
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            if image.ndim not in (2, 3):
                raise ValueError(
                    f"images[{i}] has shape {image.shape}; expected (H, W), (H, W, C) or (C, H, W)."
                )
            if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[-1] in (3, 4)):
                # Unambiguous channels-last 8-bit images go through PIL, exactly like PIL inputs.
                out.append(Image.fromarray(image).convert("RGB"))
                continue
            if image.ndim == 2:
                image = np.repeat(image[..., None], 3, axis=-1)
            out.append(image)
        else:
            raise TypeError(
                f"images[{i}] has type {type(image).__name__}; expected a PIL image or numpy array."
            )
    return out


def _describe(image: Any) -> str:
    if isinstance(image, np.ndarray):
        return f"array of shape {image.shape} and dtype {image.dtype}"
    return (
        f"{type(image).__name__} of size {getattr(image, 'size', '?')} and mode {getattr(image, 'mode', '?')}"
    )


@dataclass(frozen=True)
class Generation:
    """One generated answer and the probability the (greedy) decoder gave it.

    Attributes:
        text: the decoded answer, special tokens removed.
        probability: product of the probabilities of the generated tokens, end-of-sequence included.
    """

    text: str
    probability: float


def _merge_features(features: Sequence[VisionFeatures]) -> VisionFeatures:
    """The images of several :class:`VisionFeatures` as one, in order (one batch's projector input)."""
    grids = [f.image_grid_thw for f in features]
    return dataclasses.replace(
        features[0],
        tokens=tuple(t for f in features for t in f.tokens),
        pooled=torch.cat([f.pooled.to(features[0].pooled.device) for f in features]),
        num_image_tokens=tuple(n for f in features for n in f.num_image_tokens),
        placeholders=tuple(p for f in features for p in f.placeholders),
        image_grid_thw=torch.cat(grids) if all(g is not None for g in grids) else None,
        image_sizes=tuple(s for f in features for s in f.image_sizes),
    )

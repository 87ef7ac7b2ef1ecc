"""The [0, 1] working range of the image noises: a channel-first image in, its range and type kept out.

Every image artifact maps its input to float32 [0, 1] (:func:`to_unit`), applies its kernel there, and
maps the result back to the input's range, dtype and type (:func:`from_unit`).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.utils.type_conversion import convert_to_dst_type

__all__ = ["ImageLike", "from_unit", "to_unit"]

ImageLike = np.ndarray | torch.Tensor


def to_unit(img: ImageLike) -> tuple[np.ndarray, float, float]:
    """Map a channel-first image to float32 [0, 1].

    Returns:
        ``(unit, low, high)``: the mapped array and the input's minimum and maximum.

    Raises:
        TypeError: not a numpy array or torch tensor, or not numeric.
        ValueError: not channel-first 2D/3D, empty, or not finite.
    """
    if isinstance(img, torch.Tensor):
        arr = img.detach().cpu()
        arr = (arr.float() if arr.is_floating_point() else arr).numpy()
    elif isinstance(img, np.ndarray):
        arr = img
    else:
        raise TypeError(f"expected a numpy array or a torch tensor, got {type(img).__name__}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"expected a real numeric image, got dtype {arr.dtype}")
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"expected a channel-first image (C, H, W) or volume (C, H, W, D), got shape {tuple(arr.shape)}"
        )
    if arr.size == 0 or min(arr.shape[1:3]) < 2:
        raise ValueError(f"image of shape {tuple(arr.shape)} is too small to corrupt")
    unit = arr.astype(np.float32, copy=True)
    if not np.isfinite(unit).all():
        raise ValueError("image has NaN or infinite values")
    low, high = float(unit.min()), float(unit.max())
    if high > low:
        unit -= low
        unit /= high - low
    else:
        unit[...] = 0.0
    return unit, low, high


def from_unit(unit: np.ndarray, like: ImageLike, low: float, high: float) -> ImageLike:
    """Map a [0, 1] array back to the range, dtype and type (numpy / torch, device) of ``like``."""
    out = np.clip(unit, 0.0, 1.0).astype(np.float64) * (high - low) + low
    out = np.clip(out, low, high)
    dtype = like.dtype if isinstance(like, np.ndarray) else None
    if isinstance(like, torch.Tensor) and not like.is_floating_point():
        out = np.rint(out)
    elif dtype is not None and np.issubdtype(dtype, np.integer):
        out = np.rint(out).astype(dtype)
    elif dtype is not None:
        out = out.astype(dtype)
    result, *_ = convert_to_dst_type(out, dst=like)
    return result

"""Whether an image can be assessed at all (by the physics measures and the perceiver), and why not.

A constant, tiny, one-row, NaN-filled or extremely elongated image has no artifact to speak of: the
perceiver says "not assessable" with the reason instead of measuring it (:mod:`monai_imc.quality`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["MAX_ASPECT", "MIN_SIDE", "assessability"]

MIN_SIDE = 16
"""Smallest side (pixels) of an assessable image."""

MAX_ASPECT = 8.0
"""Largest ratio of the long to the short side of an assessable image."""


def assessability(view: ArrayLike) -> str | None:
    """Why ``view`` cannot be assessed, or ``None`` when it can.

    Reasons: not a 2-D image, NaN or infinite pixels, a single row or column, a side under
    :data:`MIN_SIDE` pixels, a long side over :data:`MAX_ASPECT` times the short one, constant pixels.
    """
    arr = np.asarray(view)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        pass
    elif arr.ndim != 2:
        return f"not a 2-D image (shape {arr.shape})"
    h, w = int(arr.shape[0]), int(arr.shape[1])
    if h == 0 or w == 0:
        return f"empty image ({h} x {w} pixels)"
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        return "NaN or infinite pixel values"
    if min(h, w) == 1:
        return f"a single {'row' if h == 1 else 'column'} of pixels ({h} x {w})"
    if min(h, w) < MIN_SIDE:
        return f"too small to assess ({h} x {w} pixels; at least {MIN_SIDE} a side needed)"
    if max(h, w) / min(h, w) > MAX_ASPECT:
        return f"extreme aspect ratio ({h} x {w} pixels)"
    if float(np.ptp(arr)) == 0.0:
        return "constant image (no contrast)"
    return None

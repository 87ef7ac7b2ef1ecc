"""The pieces of DICOM windowing that :func:`monai_imc.dicom.views.window_frame` puts together: the
functional-group lookups of multi-frame images, the modality LUT, the file's VOI and the VOI window of
PS3.3 C.11.2.1.2, the 8-bit conversion, and :func:`by_stored_value` (a lookup table for a large frame of
8- or 16-bit stored values)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

__all__ = [
    "apply_window",
    "by_stored_value",
    "first",
    "functional_item",
    "lut_max",
    "modality_lut",
    "to_uint8",
    "voi_source",
]


def functional_item(ds: Dataset, frame_index: int | None, sequence: str) -> Dataset | None:
    """The first item of a functional-group macro for a frame: per-frame first, then shared."""
    groups: list[Any] = []
    if frame_index is not None and "PerFrameFunctionalGroupsSequence" in ds:
        per_frame = ds.PerFrameFunctionalGroupsSequence
        if frame_index < len(per_frame):
            groups.append(per_frame[frame_index])
    if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        seq = group.get(sequence)
        if seq:
            return seq[0]
    return None


def modality_lut(ds: Dataset, frame: np.ndarray, frame_index: int | None) -> np.ndarray:
    if "ModalityLUTSequence" in ds:
        return np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)
    source: Dataset = ds
    if "RescaleSlope" not in ds and "RescaleIntercept" not in ds:
        item = functional_item(ds, frame_index, "PixelValueTransformationSequence")
        if item is not None:
            source = item
    slope = float(source.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(source.get("RescaleIntercept", 0.0) or 0.0)
    values = frame.astype(np.float64)  # in place from here: a radiograph's frame is tens of MB in float64
    values *= slope
    values += intercept
    return values


def first(value: Any) -> float:
    if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
        value = value[0]
    return float(value)


def voi_source(ds: Dataset, frame_index: int | None) -> Dataset | tuple[float, float, str] | None:
    """The file's VOI: the dataset holding a VOI LUT Sequence, or (center, width, function), or ``None``."""
    for source in (ds, functional_item(ds, frame_index, "FrameVOILUTSequence")):
        if source is None:
            continue
        if "VOILUTSequence" in source and len(source.VOILUTSequence):
            return source
        center, width = source.get("WindowCenter"), source.get("WindowWidth")
        if center is not None and width is not None:
            try:
                c, w = first(center), first(width)
            except (TypeError, ValueError, IndexError):
                continue
            function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
            if w > 0:
                return c, w, function
    return None


def apply_window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """The VOI window of PS3.3 C.11.2.1.2 mapped to 0..255.

    The formulas' operations run in place on one float64 copy of ``values``, in the standard's order (a
    radiograph's frame is tens of MB in float64: every temporary is a fresh allocation the first time)."""
    if width <= 1.0 and function not in ("SIGMOID", "LINEAR_EXACT"):  # LINEAR, smallest width: a threshold
        return np.where(values > center - 0.5, 255, 0).astype(np.uint8)
    out = np.subtract(
        values, center if function in ("SIGMOID", "LINEAR_EXACT") else center - 0.5, dtype=np.float64
    )
    if function == "SIGMOID":  # 255 / (1 + exp(-4 (x - c) / w))
        out *= -4.0
        out /= width
        np.exp(out, out=out)
        out += 1.0
        np.divide(255.0, out, out=out)
    else:  # LINEAR_EXACT ((x - c) / w + 0.5) * 255; LINEAR ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
        out /= width if function == "LINEAR_EXACT" else width - 1.0
        out += 0.5
        out *= 255.0
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def lut_max(arr: np.ndarray) -> float:
    return 255.0 if arr.dtype == np.uint8 else 65535.0


def to_uint8(arr: np.ndarray, maximum: float) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.array(arr, copy=True)  # never the dataset's cached pixel array: views get frozen
    scaled = np.multiply(arr, 255.0 / max(maximum, 1.0), dtype=np.float64)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


_UNSIGNED = {
    np.dtype(np.uint8): np.uint8,
    np.dtype(np.int8): np.uint8,
    np.dtype(np.uint16): np.uint16,
    np.dtype(np.int16): np.uint16,
}


def by_stored_value(frame: np.ndarray, display: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``display(frame)`` for an elementwise ``display`` (stored value -> displayed value), through a lookup
    table where that is cheaper: for a frame of 8- or 16-bit integers with more pixels than the type has
    values, ``display`` runs once on every value the type has, and each pixel looks its value up (the same
    bytes: the same operations on the same values). A radiograph of millions of 16-bit pixels then needs no
    float array of its size. Other frames: ``display(frame)``."""
    unsigned = _UNSIGNED.get(frame.dtype)
    if unsigned is None or frame.size <= np.iinfo(unsigned).max + 1:
        return display(frame)
    # every value of the frame's type, in the order of its bits read unsigned (int16 -1 is uint16 65535)
    every = np.arange(np.iinfo(unsigned).max + 1, dtype=np.int64).astype(unsigned).view(frame.dtype)
    table = display(every[None, :])[0]
    return table[frame.view(unsigned)]

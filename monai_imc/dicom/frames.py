"""One frame of a DICOM image's stored values, within a decode budget.

An image of more pixels than the budget (``max_pixels``) is read reduced, every n-th row and column, straight
from its stored bytes when its pixel data is uncompressed, and refused with a reason when it is compressed
(a decoder would hold the whole frame, and for a 10000 x 10000 image its float copies, in memory). Of a
multi-frame image only the asked frame is decoded.

Usage::

    from monai_imc.dicom.frames import read_frame

    values, step = read_frame(ds, frame_index=None, max_pixels=4096 * 4096)
"""

from __future__ import annotations

import math

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import convert_color_space, get_decoder

__all__ = ["DEFAULT_MAX_PIXELS", "FrameError", "read_frame"]

DEFAULT_MAX_PIXELS = 4096 * 4096
"""The decode budget: a frame of more pixels is read reduced (every n-th row and column) when its pixel
data is uncompressed, and refused with a reason when it is compressed (a decoder would need the whole
frame in memory). The app's setting ``max_pixels`` overrides it."""


class FrameError(ValueError):
    """A frame cannot be read; the message says why."""


def read_frame(
    ds: Dataset, frame_index: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, int]:
    """The stored values of one frame of ``ds``, decoding that frame only, within the decode budget.

    Args:
        ds: the instance.
        frame_index: 0-based frame of a multi-frame instance (``None``: a single-frame one).
        max_pixels: the decode budget (see :data:`DEFAULT_MAX_PIXELS`).

    Returns:
        ``(values, step)``: (H, W) or (H, W, 3) stored values, and the step of the reduced read (1: full).

    Raises:
        FrameError: the frame cannot be read (the message says why); a decoder may raise other errors.
    """
    if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
        raise FrameError("missing SOPClassUID or SOPInstanceUID")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 1 or columns < 1:
        raise FrameError(f"the image has {rows} rows and {columns} columns")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise FrameError(f"SamplesPerPixel {samples} is not supported (1 or 3)")
    step = 1
    if rows * columns > max_pixels:
        step = math.ceil(math.sqrt(rows * columns / max(max_pixels, 1)))
        arr = _reduced_native_frame(ds, frame_index or 0, rows, columns, samples, step)
        if arr is None:
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            raise FrameError(
                f"the image has {rows} x {columns} pixels, over the decode budget of {max_pixels} "
                f"(setting max_pixels), and its pixel data ({getattr(syntax, 'name', 'unknown syntax')}) "
                "cannot be read reduced",
            )
    elif frame_index is None:
        arr = ds.pixel_array
    else:
        syntax = ds.file_meta.TransferSyntaxUID
        arr, _ = get_decoder(syntax).as_array(ds, index=frame_index)  # this frame only
    arr = np.asarray(arr)
    if (samples == 1 and arr.ndim != 2) or (samples == 3 and (arr.ndim != 3 or arr.shape[-1] != 3)):
        raise FrameError(f"unexpected pixel array shape {arr.shape} for SamplesPerPixel {samples}")
    return arr, step


def _reduced_native_frame(
    ds: Dataset, index: int, rows: int, columns: int, samples: int, step: int
) -> np.ndarray | None:
    """Every ``step``-th row and column of one frame of uncompressed pixel data, read from the stored bytes
    without decoding the whole frame; ``None`` when the pixel data is not of that kind."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or syntax.is_compressed or "PixelData" not in ds:
        return None
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits not in (8, 16, 32):
        return None
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'<' if syntax.is_little_endian else '>'}{'i' if signed else 'u'}{bits // 8}")
    data = ds.PixelData
    per_frame = rows * columns * samples
    if len(data) < (index + 1) * per_frame * dtype.itemsize:
        raise FrameError(f"the pixel data ends before frame {index + 1} ({len(data)} bytes)")
    flat = np.frombuffer(data, dtype=dtype, count=per_frame, offset=index * per_frame * dtype.itemsize)
    if samples == 1:
        arr = flat.reshape(rows, columns)[::step, ::step]
    elif int(ds.get("PlanarConfiguration", 0) or 0) == 1:
        arr = np.moveaxis(flat.reshape(samples, rows, columns)[:, ::step, ::step], 0, -1)
    else:
        arr = flat.reshape(rows, columns, samples)[::step, ::step, :]
    arr = np.ascontiguousarray(arr).astype(dtype.newbyteorder("="), copy=False)
    stored = int(ds.get("BitsStored", bits) or bits)
    if stored < bits:
        mask = (1 << stored) - 1
        unsigned = arr.view(arr.dtype.str.replace("i", "u")) & mask
        arr = (
            unsigned.astype(np.int64) - ((unsigned >> (stored - 1)) & 1) * (1 << stored)
            if signed
            else unsigned
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if samples == 3 and photometric.startswith("YBR"):
        arr = convert_color_space(arr, photometric, "RGB")
    return arr

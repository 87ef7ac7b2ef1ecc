"""Read one image file (DICOM, PNG or JPEG) as a channel-first array, and make a display view of it.

The raw reader (values after the modality LUT, for the noise preview and the noise metrics) and the array
helpers. The picture a model is shown comes from :func:`monai_imc.data.load_view`, which windows DICOM as
the app does (:mod:`monai_imc.dicom.views`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import torch
from monai.transforms import Resize
from PIL import Image, UnidentifiedImageError
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

__all__ = ["LoadedImage", "display_view", "read_image", "shrink"]


@dataclass(frozen=True)
class LoadedImage:
    """An image read from a file.

    Attributes:
        array: float32, channel-first: ``(C, H, W)``, or ``(C, H, W, D)`` for multi-frame DICOM; DICOM
            values are after the modality LUT (e.g. Hounsfield units for CT).
        source: the file it came from.
        modality: the DICOM Modality (``"CT"``, ``"MR"`` ...), ``None`` for PNG/JPEG.
        window: the display window ``(center, width)`` the DICOM file recommends, if any.
        invert: True for MONOCHROME1 (high values display dark).
    """

    array: np.ndarray
    source: str
    modality: str | None = None
    window: tuple[float, float] | None = None
    invert: bool = False


def read_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read a DICOM, PNG or JPEG file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable image; the message names the file and the reason.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    try:
        dataset = pydicom.dcmread(file)
    except InvalidDicomError:
        return _read_picture(file)
    except Exception as err:  # a truncated or corrupt DICOM file
        raise ValueError(f"{file}: unreadable DICOM file ({err})") from err
    return _read_dicom(file, dataset)


def _read_dicom(file: Path, ds: pydicom.Dataset) -> LoadedImage:
    if "PixelData" not in ds:
        sop = getattr(ds.get("SOPClassUID"), "name", ds.get("SOPClassUID", "unknown"))
        raise ValueError(
            f"{file}: DICOM object has no pixel data (SOP Class {sop}, Modality {ds.get('Modality')})"
        )
    try:
        pixels = apply_modality_lut(ds.pixel_array, ds)
    except Exception as err:
        raise ValueError(f"{file}: cannot decode the DICOM pixel data ({err})") from err
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    arr = np.asarray(pixels, dtype=np.float32)
    if frames > 1:  # (F, H, W[, S]) -> (S, H, W, F)
        arr = np.moveaxis(arr[..., None] if samples == 1 else arr, 0, -1)
        arr = np.moveaxis(arr, 2, 0)
    else:  # (H, W[, S]) -> (S, H, W)
        arr = arr[None] if samples == 1 else np.moveaxis(arr, -1, 0)
    window = None
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = ds.WindowCenter, ds.WindowWidth
        center = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        window = (center, width) if width > 0 else None
    return LoadedImage(
        array=np.ascontiguousarray(arr),
        source=str(file),
        modality=str(ds.get("Modality", "")) or None,
        window=window,
        invert=ds.get("PhotometricInterpretation") == "MONOCHROME1",
    )


def _read_picture(file: Path) -> LoadedImage:
    try:
        with Image.open(file) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F") or img.mode == "L":
                arr = np.asarray(img, dtype=np.float32)[None]
            else:
                rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
                gray = bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))
                arr = rgb[None, ..., 0] if gray else np.moveaxis(rgb, -1, 0)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{file}: not a DICOM, PNG or JPEG image ({err})") from err
    return LoadedImage(array=np.ascontiguousarray(arr), source=str(file))


def display_view(
    array: np.ndarray, window: tuple[float, float] | None = None, invert: bool = False
) -> np.ndarray:
    """An 8-bit view of a channel-first image: the middle slice of a volume, windowed.

    Args:
        array: ``(C, H, W)`` or ``(C, H, W, D)``.
        window: ``(center, width)``; ``None``: the 0.5-99.5 percentile range of the image.
        invert: display high values dark (MONOCHROME1).

    Returns:
        ``(H, W)`` uint8 for one channel, ``(H, W, 3)`` for three.
    """
    view = np.asarray(array, dtype=np.float32)
    if view.ndim == 4:
        view = view[..., view.shape[-1] // 2]
    if window is None:
        low, high = np.percentile(view, [0.5, 99.5])
    else:
        low, high = window[0] - window[1] / 2.0, window[0] + window[1] / 2.0
    scaled = np.clip((view - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    if invert:
        scaled = 1.0 - scaled
    out = np.rint(scaled * 255.0).astype(np.uint8)
    return out[0] if out.shape[0] == 1 else np.moveaxis(out[:3], 0, -1)


def shrink(array: np.ndarray, max_size: int) -> np.ndarray:
    """Downsample a channel-first image so its longest in-plane side is at most ``max_size`` (area mode).

    Args:
        array: ``(C, H, W)`` or ``(C, H, W, D)`` (the depth is kept).
        max_size: the longest in-plane side allowed.

    Returns:
        float32, the same array when it is small enough already.
    """
    longest = max(array.shape[1:3])
    if longest <= max_size:
        return array
    size = [max(1, round(s * max_size / longest)) for s in array.shape[1:3]]
    if array.ndim == 4:
        size.append(array.shape[3])
    out = Resize(spatial_size=size, mode="area")(torch.from_numpy(np.ascontiguousarray(array)))
    return np.asarray(torch.as_tensor(out).numpy(), dtype=np.float32)

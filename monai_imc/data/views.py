"""The one path from an image file to the picture a model is shown (bank building, training, benchmark).

- DICOM: windowed by :mod:`monai_imc.dicom.views`, exactly as the app windows a series (VOI LUT, the file's
  window, else a CT preset from BodyPartExamined, else percentiles; MONOCHROME1 inverted; the middle frame
  of a multi-frame instance), so a bank built from a site's own DICOM describes the pixels the app's
  perceiver sees.
- PNG / JPEG: 8-bit pictures pass as stored (grey, or RGB); 16-bit ones are windowed to their 0.5-99.5
  percentiles.

Example:
    >>> from monai_imc.data import load_view
    >>> view = load_view("image.dcm", max_size=384)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from monai_imc.dicom.views import dataset_views
from monai_imc.imageio import LoadedImage, display_view, read_image, shrink

__all__ = ["load_view", "model_view"]


def model_view(image: LoadedImage) -> np.ndarray:
    """The 8-bit picture of an image already in memory: ``(H, W)`` or ``(H, W, 3)`` uint8.

    8-bit PNG and JPEG pass as stored; anything else is windowed by :func:`~monai_imc.imageio.display_view`
    with the image's own window (else its 0.5-99.5 percentiles; the middle frame of a volume). For a DICOM
    *file* use :func:`load_view`, which windows as the app does.
    """
    if image.modality is None and image.array.min() >= 0 and image.array.max() <= 255:
        view = np.rint(image.array).astype(np.uint8)
        return view[0] if view.shape[0] == 1 else np.moveaxis(view[:3], 0, -1)
    return display_view(image.array, image.window, image.invert)


def _shrink_view(view: np.ndarray, max_size: int) -> np.ndarray:
    chw = view[None] if view.ndim == 2 else np.moveaxis(view, -1, 0)
    if not max_size or max(chw.shape[1:3]) <= max_size:
        return view
    small = np.clip(np.rint(shrink(chw.astype(np.float32), max_size)), 0, 255).astype(np.uint8)
    return small[0] if small.shape[0] == 1 else np.moveaxis(small, 0, -1)


def _dicom_view(file: Path, ds: pydicom.Dataset, max_size: int) -> np.ndarray:
    try:
        view = dataset_views(ds)[0].pixels
    except ValueError as err:  # UnsupportedSeriesError: no pixel data, an SR, a corrupt stream
        raise ValueError(f"{file}: {err}") from err
    return _shrink_view(np.array(view), max_size)


def load_view(path: str | os.PathLike[str], max_size: int = 0) -> np.ndarray:
    """Read an image file and return the 8-bit view a model is shown, its longest side at most ``max_size``.

    Args:
        path: a DICOM, PNG or JPEG file.
        max_size: longest side in pixels (area downsampling); 0 keeps the stored size.

    Returns:
        ``(H, W)`` uint8 for grey, ``(H, W, 3)`` for colour.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable image (the message names the file and the reason).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    try:
        ds = pydicom.dcmread(file)
    except InvalidDicomError:
        image = read_image(file)
        if max_size and max(image.array.shape[1:3]) > max_size:
            image = dataclasses.replace(image, array=shrink(image.array, max_size))
        return model_view(image)
    except Exception as err:  # a truncated or corrupt DICOM file
        raise ValueError(f"{file}: unreadable DICOM file ({err})") from err
    return _dicom_view(file, ds, max_size)

"""Reading DICOM, PNG and JPEG files into channel-first arrays; clear errors for what is not an image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers import dicom_path
from PIL import Image

from monai_imc.imageio import display_view, read_image


def test_ct_is_read_in_hounsfield_units() -> None:
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    image = read_image(dicom_path("CT_small.dcm"))
    assert image.modality == "CT" and image.array.shape == (1, 128, 128) and image.array.dtype == np.float32
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(image.array[0], expected)


def test_multiframe_mr_is_a_volume_and_color_us_has_three_channels() -> None:
    volume = read_image(dicom_path("emri_small.dcm"))
    assert volume.modality == "MR" and volume.array.shape == (1, 64, 64, 10)
    us = read_image(dicom_path("US1_UNCI.dcm"))
    assert us.modality == "US" and us.array.shape == (3, 480, 640)
    assert display_view(us.array).shape == (480, 640, 3)
    assert display_view(volume.array).shape == (64, 64)


def test_window_from_dicom_is_kept() -> None:
    image = read_image(dicom_path("MR_small.dcm"))
    assert image.window is not None and image.window[1] > 0


def test_png_and_jpeg(tmp_path: Path) -> None:
    gray16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 7)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    assert np.array_equal(read_image(tmp_path / "gray16.png").array[0], gray16.astype(np.float32))
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "color.png")
    assert read_image(tmp_path / "color.png").array.shape == (3, 20, 30)
    Image.fromarray(np.full((20, 30, 3), 90, dtype=np.uint8)).save(tmp_path / "gray_as_rgb.jpg")
    assert read_image(tmp_path / "gray_as_rgb.jpg").array.shape == (1, 20, 30)


def test_dataset_jpeg(data_dir: Path) -> None:
    image = read_image(data_dir / "vqa_rad/images/synpic54610.jpg")
    assert image.array.ndim == 3 and image.modality is None


def test_not_an_image_names_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.txt: not a DICOM, PNG or JPEG image"):
        read_image(text)
    with pytest.raises(FileNotFoundError, match="missing.dcm"):
        read_image(tmp_path / "missing.dcm")


def test_dicom_without_pixels_or_truncated(tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    with pytest.raises(ValueError, match=r"no_pixels\.dcm: DICOM object has no pixel data"):
        read_image(tmp_path / "no_pixels.dcm")
    raw = dicom_path("CT_small.dcm").read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"truncated\.dcm"):
        read_image(tmp_path / "truncated.dcm")

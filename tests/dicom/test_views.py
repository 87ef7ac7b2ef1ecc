"""Series -> key views on real DICOM (pydicom-data): windowing per modality, MONOCHROME1, RGB, frames."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers import dicom_path
from pydicom.pixels import apply_color_lut
from pydicom.uid import generate_uid

from monai_imc.dicom.views import (
    CT_PRESETS,
    SeriesView,
    UnsupportedSeriesError,
    ct_preset_for,
    dataset_views,
    key_indices,
    series_views,
    sop_class_kind,
    window_frame,
)


def _read(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(dicom_path(name))


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 LINEAR window to 0..255, written out independently of the library."""
    lo, hi = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    out = np.where(
        values <= lo, 0.0, np.where(values > hi, 255.0, ((values - (center - 0.5)) / (width - 1) + 0.5) * 255)
    )
    return np.rint(out).astype(np.uint8)


def test_ct_without_window_uses_soft_tissue_preset_in_hu() -> None:
    ds = _read("CT_small.dcm")
    assert "WindowCenter" not in ds and ds.get("BodyPartExamined") is None
    (view,) = series_views([ds])
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert view.window is not None and view.window.source == "preset:soft_tissue"
    assert (view.window.center, view.window.width) == CT_PRESETS["soft_tissue"]
    assert view.pixels.shape == (128, 128) and view.pixels.dtype == np.uint8
    np.testing.assert_array_equal(view.pixels, _linear_window(hu, 40.0, 400.0))
    # the window really is in HU: air (HU < -160) is black, dense bone (HU > 240) white
    assert (view.pixels[hu < -160] == 0).all() and (view.pixels[hu > 240] == 255).all()
    assert view.modality == "CT" and view.frame_number is None
    assert view.sop_instance_uid == ds.SOPInstanceUID and view.sop_class_uid == ds.SOPClassUID
    assert view.study_instance_uid == ds.StudyInstanceUID


def test_ct_preset_from_body_part_and_override() -> None:
    ds = _read("CT_small.dcm")
    ds.BodyPartExamined = "CHEST"
    assert ct_preset_for(ds) == "lung"
    (lung,) = series_views([ds])
    assert lung.window is not None and lung.window.source == "preset:lung"
    (bone,) = series_views([ds], ct_preset="bone")
    assert bone.window is not None and (bone.window.center, bone.window.width) == CT_PRESETS["bone"]
    assert not np.array_equal(lung.pixels, bone.pixels)


def test_file_window_wins_over_presets() -> None:
    ds = _read("693_UNCI.dcm")  # head CT with WindowCenter 40 / WindowWidth 100
    (view,) = series_views([ds])
    assert view.window is not None and view.window.source == "file"
    assert (view.window.center, view.window.width) == (40.0, 100.0)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(view.pixels, _linear_window(hu, 40.0, 100.0))


def test_mr_percentile_window_without_file_window() -> None:
    ds = _read("MR_small.dcm")
    del ds.WindowCenter, ds.WindowWidth
    (view,) = series_views([ds])
    assert view.window is not None and view.window.source == "percentile"
    lo, hi = np.percentile(ds.pixel_array.astype(np.float64), (0.5, 99.5))
    assert view.window.center == pytest.approx((lo + hi) / 2)
    assert view.window.width == pytest.approx(hi - lo)
    assert view.pixels.min() == 0 and view.pixels.max() == 255


def test_voi_lut_sequence_is_applied() -> None:
    ds = _read("MR_small.dcm")
    del ds.WindowCenter, ds.WindowWidth
    item = pydicom.Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = [65535 - 16 * i for i in range(4096)]  # a reversing LUT: proves it was used
    ds.VOILUTSequence = [item]
    (view,) = series_views([ds])
    assert view.window is not None and view.window.source == "file_voi_lut"
    stored = np.clip(ds.pixel_array.astype(np.int64), 0, 4095)
    expected = np.rint((65535 - 16 * stored) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(view.pixels, expected)


def test_unknown_ct_preset_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="unknown CT preset") as info:
        series_views([_read("CT_small.dcm")], ct_preset="liver")
    assert not isinstance(info.value, UnsupportedSeriesError)


def test_monochrome1_is_inverted() -> None:
    ds = _read("RG1_UNCI.dcm")  # chest CR, MONOCHROME1, WindowCenter/Width in the file
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.Modality == "CR"
    (view,) = series_views([ds])
    as_mono2 = copy.deepcopy(ds)
    as_mono2.PhotometricInterpretation = "MONOCHROME2"
    (plain,) = series_views([as_mono2])
    assert view.window == plain.window and view.window is not None and view.window.source == "file"
    np.testing.assert_array_equal(view.pixels.astype(np.int16), 255 - plain.pixels.astype(np.int16))


def test_monochrome1_copy_of_mr_is_inverted() -> None:
    ds = _read("MR_small.dcm")
    (plain,) = series_views([ds])
    ds.PhotometricInterpretation = "MONOCHROME1"
    (inverted,) = series_views([ds])
    np.testing.assert_array_equal(inverted.pixels, 255 - plain.pixels)


def test_rgb_ultrasound_passes_through() -> None:
    ds = _read("US1_UNCI.dcm")
    (view,) = series_views([ds])
    assert view.pixels.shape == (480, 640, 3) and view.window is None
    np.testing.assert_array_equal(view.pixels, ds.pixel_array)
    with pytest.raises(ValueError):
        view.pixels[0, 0, 0] = 1  # views are read-only
    ds.pixel_array[0, 0, 0] = 1  # ... and the dataset's own pixels are left writable


@pytest.mark.parametrize("name", ["SC_ybr_full_uncompressed.dcm", "SC_rgb_16bit.dcm", "OBXXXX1A.dcm"])
def test_ybr_16bit_and_palette_colour_become_rgb(name: str) -> None:
    ds = _read(name)
    (view,) = series_views([ds])
    assert view.pixels.ndim == 3 and view.pixels.shape[-1] == 3 and view.window is None
    if name.startswith("SC_"):  # colour bars: red, then pink, green, blue
        np.testing.assert_allclose(view.pixels[5, 50], [255, 0, 0], atol=2)
        np.testing.assert_allclose(view.pixels[25, 50], [0, 255, 0], atol=6)
    else:  # PALETTE COLOR: the palette's 16-bit entries scaled to 8 bits
        rgb = apply_color_lut(ds.pixel_array, ds)
        np.testing.assert_allclose(view.pixels, rgb * (255 / 65535), atol=0.51)


def test_multiframe_mr_gives_middle_frame() -> None:
    ds = _read("emri_small.dcm")
    frames = int(ds.NumberOfFrames)
    (view,) = series_views([ds])
    assert view.frame_number == frames // 2 + 1 and view.count == frames
    expected = dataset_views(ds, n_views=frames)[frames // 2]
    np.testing.assert_array_equal(view.pixels, expected.pixels)
    # the view is that frame, windowed: ranks of pixel values are kept
    frame = ds.pixel_array[frames // 2].astype(np.float64)
    assert np.corrcoef(frame.ravel(), view.pixels.ravel().astype(np.float64))[0, 1] > 0.95
    three = series_views([ds], n_views=3)
    assert [v.frame_number for v in three] == [i + 1 for i in key_indices(frames, 3)]


def _ct_volume(count: int = 5) -> list[pydicom.Dataset]:
    base = _read("CT_small.dcm")
    slices = []
    for i in range(count):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["slice", str(i)])
        ds.ImagePositionPatient = [0.0, 0.0, 5.0 * i]
        ds.InstanceNumber = count - i  # numbering opposite to position: position must win
        arr = ds.pixel_array.copy()
        arr[0, 0] = i
        ds.PixelData = arr.tobytes()
        slices.append(ds)
    return slices


def test_volume_sorted_by_position_middle_and_evenly_spaced() -> None:
    slices = _ct_volume(5)
    shuffled = [slices[i] for i in (3, 0, 4, 1, 2)]
    (middle,) = series_views(shuffled)
    assert middle.sop_instance_uid == slices[2].SOPInstanceUID
    assert (middle.position, middle.count) == (2, 5)
    picked = series_views(shuffled, n_views=3)
    assert [v.sop_instance_uid for v in picked] == [slices[i].SOPInstanceUID for i in (0, 2, 4)]


def test_localizer_in_the_series_is_left_out_of_the_volume() -> None:
    slices = _ct_volume(4)
    localizer = copy.deepcopy(slices[0])
    localizer.SOPInstanceUID = generate_uid(entropy_srcs=["localizer"])
    localizer.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]  # coronal
    localizer.ImagePositionPatient = [0.0, 0.0, 7.5]
    views = series_views([localizer, *slices], n_views=4)
    assert [v.sop_instance_uid for v in views] == [ds.SOPInstanceUID for ds in slices]


def test_key_indices() -> None:
    assert key_indices(1) == [0]
    assert key_indices(10) == [5]
    assert key_indices(10, 3) == [1, 5, 8]
    assert key_indices(2, 5) == [0, 1]
    with pytest.raises(ValueError):
        key_indices(0)


def test_two_radiographs_give_a_view_each() -> None:
    a = _read("MR_small.dcm")
    b = copy.deepcopy(a)
    del a.ImagePositionPatient, b.ImagePositionPatient, a.InstanceNumber, b.InstanceNumber
    a.Modality = b.Modality = "DX"
    b.SOPInstanceUID = generate_uid(entropy_srcs=["second"])
    views = series_views([a, b])
    assert len(views) == 2 and all(isinstance(v, SeriesView) for v in views)


def test_sr_raises_named_error() -> None:
    path = dicom_path("test-SR.dcm")
    ds = pydicom.dcmread(path)
    with pytest.raises(UnsupportedSeriesError) as info:
        series_views([ds])
    err = info.value
    assert isinstance(err, ValueError)
    assert err.sop_instance_uid == ds.SOPInstanceUID and ds.SOPInstanceUID in str(err)
    assert str(path) in str(err) and "not an image" in err.reason


def test_key_object_raises_named_error() -> None:
    ds = pydicom.dcmread(dicom_path("test-SR.dcm"))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document
    ds.Modality = "KO"
    with pytest.raises(UnsupportedSeriesError, match="not an image object") as info:
        series_views([ds])
    assert "Key Object Selection" in info.value.reason


def test_missing_pixel_data_raises_named_error() -> None:
    ds = _read("CT_small.dcm")
    del ds.PixelData
    with pytest.raises(UnsupportedSeriesError, match="no pixel data") as info:
        series_views([ds])
    assert ds.SOPInstanceUID in str(info.value)


def test_corrupt_pixel_data_raises_named_error(tmp_path: Path) -> None:
    ds = _read("CT_small.dcm")
    ds.PixelData = ds.PixelData[:100]  # far too short for 128 x 128 x 16 bits
    path = tmp_path / "corrupt.dcm"
    ds.save_as(path)
    bad = pydicom.dcmread(path)
    with pytest.raises(UnsupportedSeriesError, match="cannot decode pixel data") as info:
        series_views([bad])
    assert info.value.path == str(path) and bad.SOPInstanceUID in str(info.value)


def test_mixed_series_and_empty_input_raise() -> None:
    a, b = _read("CT_small.dcm"), _read("MR_small.dcm")
    with pytest.raises(UnsupportedSeriesError, match="2 series"):
        series_views([a, b])
    with pytest.raises(UnsupportedSeriesError, match="no instances"):
        series_views([])


def test_zero_frames_is_a_reason_not_a_type_error() -> None:
    ds = _read("emri_small.dcm")
    ds.NumberOfFrames = 0
    with pytest.raises(UnsupportedSeriesError, match="NumberOfFrames is 0"):
        series_views([ds])


def test_multiframe_decodes_only_the_key_frame() -> None:
    ds = _read("emri_small.dcm")
    (view,) = series_views([ds])
    assert "PixelData" in ds and getattr(ds, "_pixel_array", None) is None  # no full decode was cached
    assert view.frame_number == int(ds.NumberOfFrames) // 2 + 1


@pytest.mark.parametrize("name", ["MR_small.dcm", "SC_rgb.dcm", "MR_small_bigendian.dcm", "US1_UNCR.dcm"])
def test_over_the_budget_an_uncompressed_image_is_read_reduced(name: str) -> None:
    ds = _read(name)
    full = ds.pixel_array
    rows, columns = full.shape[:2]
    step = 3
    (view,) = dataset_views(_read(name), max_pixels=-(-(rows * columns) // (step * step)))
    assert view.notes and f"1 of every {step} rows and columns" in view.notes[0]
    expected, _ = window_frame(ds, np.ascontiguousarray(full[::step, ::step]))
    np.testing.assert_array_equal(view.pixels, expected)


def test_over_the_budget_a_compressed_image_is_refused_with_a_reason() -> None:
    ds = _read("MR_small_RLE.dcm")
    with pytest.raises(
        UnsupportedSeriesError, match="over the decode budget of 100 .* cannot be read reduced"
    ):
        series_views([ds], max_pixels=100)


def test_nan_and_inf_are_shown_black_and_noted() -> None:
    ds = _read("MR_small.dcm")
    values = ds.pixel_array.astype(np.float32)
    values[0, :] = np.nan
    values[1, :] = np.inf
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.tobytes()
    (view,) = series_views([ds])
    assert "are NaN or infinite" in view.notes[0]
    assert (view.pixels[:2] == view.pixels[2:].min()).all()
    values[:] = np.nan
    ds.FloatPixelData = values.tobytes()
    with pytest.raises(UnsupportedSeriesError, match="no finite value"):
        series_views([ds])


@pytest.mark.parametrize(
    ("uid", "image"),
    [
        ("1.2.840.10008.5.1.4.1.1.481.5", False),  # RT Plan
        ("1.2.840.10008.5.1.4.1.1.481.2", False),  # RT Dose
        ("1.2.840.10008.5.1.4.1.1.481.1", True),  # RT Image
        ("1.2.840.10008.5.1.4.1.1.66.4", False),  # Segmentation
        ("1.2.840.10008.5.1.4.1.1.4.1", True),  # Enhanced MR Image
        ("1.2.840.10008.5.1.4.1.1.6.2", True),  # Enhanced US Volume
        ("1.2.826.0.1.3680043.8.498.77", False),  # unknown: the SR could not reference it
    ],
)
def test_image_objects_are_told_by_their_sop_class(uid: str, image: bool) -> None:
    ds = _read("MR_small.dcm")
    ds.SOPClassUID = uid
    assert sop_class_kind(ds)[0] is image

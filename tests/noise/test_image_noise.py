"""Image artifacts: contract (type, dtype, shape, range), seeding, dict twins, monotone severity, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers import dicom_pixels
from monai.data import MetaTensor
from PIL import Image

from monai_imc.noise import get_noise, list_noises
from monai_imc.noise import image as image_noise
from monai_imc.noise.metrics import psnr, ssim

IMAGE_NOISES = list_noises("image")
RANDOM_NOISES = {"motion", "ghosting", "spike", "bias_field", "rician", "low_dose"}


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    return dicom_pixels("CT_small.dcm")  # (1, 128, 128) int16


@pytest.fixture(scope="module")
def mr_volume() -> np.ndarray:
    return dicom_pixels("emri_small.dcm")  # (1, 64, 64, 10) uint16


def test_at_least_seven_image_artifacts() -> None:
    assert len(IMAGE_NOISES) >= 7
    assert {"motion", "ghosting", "bias_field", "blur", "low_dose"} <= set(IMAGE_NOISES)


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_numpy_keeps_dtype_shape_and_range(name: str, ct: np.ndarray) -> None:
    hu = ct.astype(np.float32) - 1024.0  # a negative range, as in Hounsfield units
    for img in (ct, hu):
        out = get_noise(name).apply(img, severity=4, seed=1)
        assert isinstance(out, np.ndarray)
        assert out.dtype == img.dtype and out.shape == img.shape
        assert out.min() >= img.min() and out.max() <= img.max()
        assert not np.array_equal(out, img), f"{name} left the image unchanged"


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_torch_volume_keeps_type_dtype_shape_and_range(name: str, mr_volume: np.ndarray) -> None:
    vol = torch.from_numpy(mr_volume.astype(np.float64))
    out = get_noise(name).apply(vol, severity=3, seed=2)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float64 and out.shape == vol.shape
    assert float(out.min()) >= float(vol.min()) and float(out.max()) <= float(vol.max())
    assert not torch.equal(out, vol)


def test_metatensor_in_metatensor_out(ct: np.ndarray) -> None:
    img = MetaTensor(torch.from_numpy(ct.astype(np.float32)), meta={"filename_or_obj": "CT_small.dcm"})
    out = image_noise.MotionArtifact(severity=2, seed=0)(img)
    assert isinstance(out, MetaTensor)
    assert out.meta["filename_or_obj"] == "CT_small.dcm"


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_seed_reproduces_and_varies(name: str, ct: np.ndarray) -> None:
    spec = get_noise(name)
    a = spec.apply(ct, severity=3, seed=11)
    b = spec.apply(ct, severity=3, seed=11)
    c = spec.apply(ct, severity=3, seed=12)
    np.testing.assert_array_equal(a, b)
    if name in RANDOM_NOISES:
        assert not np.array_equal(a, c), f"{name} ignores its seed"
    else:
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_successive_calls_draw_anew_and_randomize_false_repeats(name: str, ct: np.ndarray) -> None:
    transform = get_noise(name).make(severity=3, seed=5)
    first = transform(ct)
    repeat = transform(ct, randomize=False)
    second = transform(ct)
    np.testing.assert_array_equal(first, repeat)
    if name in RANDOM_NOISES:
        assert not np.array_equal(first, second)


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_dict_twin_matches_array_transform(name: str, ct: np.ndarray) -> None:
    array_cls = get_noise(name).transform
    dict_cls = getattr(image_noise, array_cls.__name__ + "d")
    out = dict_cls(keys=["image"], severity=2, seed=3)({"image": ct, "label": "kept"})
    np.testing.assert_array_equal(out["image"], array_cls(severity=2, seed=3)(ct))
    assert out["label"] == "kept"


def _real_images() -> dict[str, np.ndarray]:
    return {
        "CT_small (CT)": dicom_pixels("CT_small.dcm"),
        "MR_small (MR)": dicom_pixels("MR_small.dcm"),
        "693_UNCI (head CT)": dicom_pixels("693_UNCI.dcm"),
        "emri_small (MR volume)": dicom_pixels("emri_small.dcm"),
    }


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_psnr_falls_strictly_with_severity_on_bundled_dicom(name: str) -> None:
    for label, img in _real_images().items():
        values = [psnr(img, get_noise(name).apply(img, severity=s, seed=0)) for s in range(1, 6)]
        assert all(a > b for a, b in itertools.pairwise(values)), f"{name} on {label}: {values}"


@pytest.mark.parametrize("name", IMAGE_NOISES)
def test_psnr_falls_strictly_with_severity_on_dataset_images(name: str, data_dir) -> None:
    files = ["slake/imgs/xmlab1/source.jpg", "slake/imgs/xmlab102/source.jpg", "vqa_rad/images/synpic54610.jpg",
             "vqa_rad/images/synpic29265.jpg"]
    for rel in files:
        img = np.asarray(Image.open(data_dir / rel).convert("L"))[None]  # uint8, as stored
        values = [psnr(img, get_noise(name).apply(img, severity=s, seed=0)) for s in range(1, 6)]
        assert all(a > b for a, b in itertools.pairwise(values)), f"{name} on {rel}: {values}"


def test_ssim_matches_scikit_image_and_falls_with_severity(data_dir) -> None:
    """MONAI's SSIM as wrapped here equals scikit-image's Gaussian-window SSIM (an independent implementation),
    is 1 for identical images, and falls from level 1 to 5 of every noise (mean over four real images)."""
    from skimage.metrics import structural_similarity

    files = ["slake/imgs/xmlab1/source.jpg", "slake/imgs/xmlab102/source.jpg", "vqa_rad/images/synpic54610.jpg",
             "vqa_rad/images/synpic29265.jpg"]
    images = [np.asarray(Image.open(data_dir / rel).convert("L").resize((128, 128)))[None] for rel in files]
    noisy = get_noise("low_dose").apply(images[0], severity=3, seed=0)
    reference = structural_similarity(images[0][0].astype(float), noisy[0].astype(float),
                                      data_range=float(np.ptp(images[0])), gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
    assert ssim(images[0], noisy) == pytest.approx(reference, abs=1e-6)
    assert ssim(images[0], images[0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(images[0], images[1][:, :64])
    for name in IMAGE_NOISES:
        means = [np.mean([ssim(img, get_noise(name).apply(img, severity=s, seed=0)) for img in images])
                 for s in range(1, 6)]
        assert all(a > b for a, b in itertools.pairwise(means)), f"{name}: {means}"


def test_rgb_image_keeps_three_channels(data_dir) -> None:
    img = np.moveaxis(np.asarray(Image.open(data_dir / "slake/imgs/xmlab1/source.jpg").convert("RGB")), -1, 0)
    out = get_noise("ghosting").apply(img, severity=5)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_constant_image_passes_unchanged() -> None:
    img = np.full((1, 32, 32), 7, dtype=np.int16)
    for name in IMAGE_NOISES:
        np.testing.assert_array_equal(get_noise(name).apply(img, severity=5), img)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, "3", True])
def test_bad_severity_is_named(severity: object) -> None:
    with pytest.raises(ValueError, match="severity"):
        image_noise.BlurArtifact(severity=severity)  # type: ignore[arg-type]


def test_bad_images_raise_clear_errors() -> None:
    blur = image_noise.BlurArtifact()
    with pytest.raises(ValueError, match=r"channel-first.*\(64, 64\)"):
        blur(np.zeros((64, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        blur(np.full((1, 8, 8), np.nan, dtype=np.float32))
    with pytest.raises(TypeError, match="list"):
        blur([[0.0, 1.0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        blur(np.zeros((1, 8, 8), dtype=bool))

"""Physics measures: each one on synthetic images with a known answer, and on the project's own noises."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from monai_imc import quality
from monai_imc.noise import get_noise


def phantom(size: int = 128, seed: int = 0) -> np.ndarray:
    """A head-like phantom in [0, 1]: an ellipse with sharp edges, inner blobs and a soft texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    img = 0.6 * ((yy / 0.42) ** 2 + (xx / 0.34) ** 2 <= 1.0)
    for _ in range(6):
        cy, cx, r = rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.15), rng.uniform(0.03, 0.08)
        img = img + 0.3 * (((yy - cy) ** 2 + (xx - cx) ** 2) <= r**2)
    img = img + 0.05 * ndimage.gaussian_filter(rng.standard_normal((size, size)), 3.0) * (img > 0)
    return np.clip(img, 0.0, 1.0)


def kspace(img: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fft2(img))


def image(spectrum: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.ifft2(np.fft.ifftshift(spectrum)))


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def test_noise_sigma_recovers_known_white_noise() -> None:
    ramp = np.tile(np.linspace(0.2, 0.8, 128), (128, 1))
    for sigma in (0.01, 0.05):
        noisy = ramp + np.random.default_rng(1).normal(0.0, sigma, ramp.shape)
        assert quality.noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)


def test_spike_score_finds_an_injected_kspace_spike() -> None:
    img = phantom()
    scores = []
    for amplitude in (0.0, 0.05, 0.15):  # the stripes' amplitude, as a fraction of the intensity range
        spectrum = kspace(img)
        spectrum[64 + 12, 64 - 9] += amplitude * img.size
        scores.append(quality.spike_score(image(spectrum)))
    assert scores == sorted(scores)
    assert scores[1] > scores[0] + 0.5 and scores[2] > scores[0] + 1.5


def test_ghost_energy_sees_periodic_kspace_line_errors() -> None:
    img = phantom()
    spectrum = kspace(img)
    spectrum[::4] *= 0.3  # every 4th phase-encoding line: 4 ghosts
    assert quality.ghost_energy(image(spectrum)) > quality.ghost_energy(img) + 0.2


def test_truncation_and_ringing_grow_when_kspace_is_cut() -> None:
    img = phantom(256)
    spectrum = kspace(img)
    keep = np.zeros_like(spectrum, dtype=bool)
    keep[128 - 40 : 128 + 40, 128 - 40 : 128 + 40] = True
    cut = image(np.where(keep, spectrum, 0))
    assert quality.truncation_cliff(cut) > quality.truncation_cliff(img) + 0.4
    # Ringing beside edges, against the same loss of resolution without ringing (a smooth roll-off).
    smooth = ndimage.gaussian_filter(img, 1.2)
    assert quality.gibbs_ringing(cut) > quality.gibbs_ringing(smooth)


def test_sharpness_falls_with_more_blur() -> None:
    img = phantom()
    values = [quality.sharpness(ndimage.gaussian_filter(img, s)) for s in (0.0, 0.8, 1.6, 3.0)]
    assert values == sorted(values, reverse=True)
    assert values[0] - values[-1] > 1.0


def test_anisotropy_sees_smearing_along_one_axis() -> None:
    img = phantom()
    smeared = ndimage.uniform_filter1d(img, size=7, axis=0)
    assert quality.anisotropy(img) < 0.3 < quality.anisotropy(smeared)


def test_bias_trend_grows_with_a_smooth_gain() -> None:
    img = phantom()
    yy, xx = np.mgrid[0:128, 0:128] / 128 - 0.5
    values = [quality.bias_trend(img * np.exp(a * (yy + 0.5 * xx))) for a in (0.0, 0.5, 1.0)]
    assert values == sorted(values)
    assert values[2] > values[0] + 0.05


def test_blockiness_sees_jpeg_blocks() -> None:
    img = to_uint8(phantom(256) + 0.02 * np.random.default_rng(0).standard_normal((256, 256)))
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=8)
    jpeg = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float64) / 255
    assert quality.blockiness(jpeg) > quality.blockiness(img / 255.0) + 0.2


def test_signal_dependent_noise_tells_quantum_from_thermal_noise() -> None:
    img = 0.1 + 0.8 * phantom()
    rng = np.random.default_rng(0)
    thermal = img + rng.normal(0.0, 0.03, img.shape)
    quantum = img + rng.normal(0.0, 1.0, img.shape) * 0.06 * img  # noise std grows with the signal
    assert quality.signal_dependent_noise(quantum) > quality.signal_dependent_noise(thermal) + 0.3


def test_noise_level_function_recovers_flat_and_growing_noise() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 256), (256, 1))  # every level, no structure
    rng = np.random.default_rng(2)
    flat = ramp + rng.normal(0.0, 0.04, ramp.shape)
    dark, slope, bright = quality.noise_level_function(flat)
    assert np.exp(dark) == pytest.approx(0.04, rel=0.2) and np.exp(bright) == pytest.approx(0.04, rel=0.2)
    assert abs(slope) < 0.3, "thermal noise does not change with the level"
    growing = ramp + rng.normal(0.0, 1.0, ramp.shape) * 0.01 * np.exp(2.0 * ramp)  # log sigma = log 0.01 + 2 x
    dark, slope, bright = quality.noise_level_function(growing)
    assert slope == pytest.approx(2.0, abs=0.4)
    assert bright - dark == pytest.approx(2.0 * 0.875, abs=0.4)  # the bins' medians span about 7/8 of the ramp


def test_noise_level_function_leaves_clipped_regions_out() -> None:
    ramp = np.tile(np.linspace(0.1, 0.7, 256), (256, 1))
    noisy = ramp + np.random.default_rng(3).normal(0.0, 0.03, ramp.shape)
    windowed = noisy.copy()
    windowed[:, :96] = 0.0  # black air
    windowed[:, -64:] = 1.0  # white bone: a display window clips both, leaving no noise to measure
    dark, _, bright = quality.noise_level_function(windowed)
    assert np.exp(dark) == pytest.approx(0.03, rel=0.25) and np.exp(bright) == pytest.approx(0.03, rel=0.25)


def test_left_right_asymmetry_sees_shading_not_anatomy() -> None:
    img = phantom(256)
    mirrored = 0.5 * (img + img[:, ::-1])  # perfectly symmetric anatomy
    assert quality.left_right_asymmetry(mirrored) < 0.02
    xx = np.linspace(-1.0, 1.0, 256)[None, :]
    for gain, floor in ((0.3, 0.15), (0.8, 0.4)):
        shaded = mirrored * np.exp(gain * xx)  # the log ratio to the mirror is 2 * gain * x
        assert quality.left_right_asymmetry(shaded) > floor


def test_histogram_entropy_grows_when_tissue_peaks_are_smeared() -> None:
    tissue = np.where(phantom(256) > 0.3, 0.9, 0.6) * (phantom(256) > 0)  # two tissue classes
    assert quality.histogram_entropy(tissue) < 0.8  # two peaks: at most log 2 (0.69) and a little
    shaded = tissue * np.exp(0.5 * np.linspace(-1.0, 1.0, 256)[None, :])
    assert quality.histogram_entropy(shaded) > quality.histogram_entropy(tissue) + 1.0


def test_clipped_shares_count_pixels_at_either_end() -> None:
    img = np.full((100, 100), 128, np.uint8)
    img[:10] = 255  # 10% at white
    img[-5:] = 0  # 5% at black
    img[50, 50] = 254  # within half a grey level is not clipped
    white, black = quality.clipped_shares(img.astype(np.float64))
    assert white == pytest.approx(0.10) and black == pytest.approx(0.05)
    scaled = img.astype(np.float64) / 255.0 * 1000.0  # the same on any intensity scale
    assert quality.clipped_shares(scaled) == (white, black)


def test_a_banks_own_measure_names_pick_the_vector() -> None:
    view = to_uint8(phantom())
    values, vector = quality.measures_and_vector(view, ("blockiness", "noise_sigma"))
    assert vector.tolist() == pytest.approx([values["blockiness"], np.log(values["noise_sigma"] + 1e-4)])
    with pytest.raises(KeyError):
        quality.measure_vector(view, ("not_a_measure",))


@pytest.mark.parametrize(
    ("view", "words"),
    [
        (np.zeros((64, 64), np.uint8), "constant"),
        (np.full((1, 1), 7, np.uint8), "single"),
        (np.arange(4000, dtype=np.uint8).reshape(1, 4000), "single row"),
        (np.arange(4000, dtype=np.uint8).reshape(4000, 1), "single column"),
        (np.arange(100, dtype=np.uint8).reshape(10, 10), "too small"),
        (np.where(np.eye(64) > 0, np.nan, 0.5), "NaN"),
        (np.where(np.eye(64) > 0, np.inf, 0.5), "NaN or infinite"),
        (np.arange(20 * 400, dtype=np.float32).reshape(20, 400), "aspect ratio"),
        (np.zeros((4, 4, 4, 4)), "not a 2-D image"),
    ],
)
def test_degenerate_views_are_not_assessable(view: np.ndarray, words: str) -> None:
    reason = quality.assessability(view)
    assert reason is not None and words in reason
    with pytest.raises(ValueError, match="cannot be measured"):
        quality.measures(view)


def test_ordinary_views_are_assessable_and_measured_in_order() -> None:
    view = to_uint8(phantom())
    assert quality.assessability(view) is None
    assert quality.assessability(np.stack([view] * 3, axis=-1)) is None
    vector = quality.measure_vector(view)
    assert vector.shape == (len(quality.MEASURES),) and np.isfinite(vector).all()


# Each of the project's image noises moves the measure that describes it (severity 5 vs clean).
RESPONSES = [
    ("rician", "noise_sigma", +1),
    ("low_dose", "signal_dependent_noise", +1),
    ("spike", "spike_score", +1),
    ("ghosting", "ghost_energy", +1),
    ("gibbs", "truncation_cliff", +1),
    ("blur", "sharpness", -1),
    ("bias_field", "bias_trend", +1),
    ("jpeg", "blockiness", +1),
    ("motion", "anisotropy", +1),
    ("rician", "noise_dark", +1),
    ("low_dose", "noise_bright", +1),  # noise_slope's known answer is the synthetic test above
    ("bias_field", "clipped_white", +1),
    ("rician", "clipped_black", -1),  # the noise floor lifts the background off black
    ("bias_field", "left_right_asymmetry", +1),
]


@pytest.mark.parametrize(("noise", "measure", "sign"), RESPONSES)
def test_each_registry_noise_moves_its_measure(noise: str, measure: str, sign: int) -> None:
    wins = 0
    for seed in range(4):
        clean = to_uint8(phantom(256, seed))
        noisy = get_noise(noise).apply(clean[None], severity=5, seed=seed)[0]
        before, after = quality.measures(clean)[measure], quality.measures(noisy)[measure]
        wins += sign * (after - before) > 0
    assert wins >= 3, f"{measure} did not respond to {noise}"

"""Local noise: the noise acts inside the region only, seeded, array and dict twins alike, SLAKE lesion
regions from the real dataset, the bench's views and the preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import dicom_pixels
from monai.data import MetaTensor

from monai_imc.bench.records import noisy_image
from monai_imc.cli import main
from monai_imc.data import load_dataset, load_view
from monai_imc.data.regions import lesion_region
from monai_imc.noise import get_noise, list_noises, parse_noise_list
from monai_imc.noise.local import (
    LocalNoise,
    LocalNoised,
    base_noise,
    local_noise_name,
    local_noises,
    region_weights,
)
from monai_imc.noise.preview import render_noise_grid

IMAGE_NOISES = list_noises("image")


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    return dicom_pixels("CT_small.dcm")  # (1, 128, 128) int16


@pytest.fixture(scope="module")
def lesion() -> np.ndarray:
    mask = np.zeros((128, 128), dtype=bool)
    mask[30:70, 50:100] = True
    mask[90:110, 10:30] = True  # two parts, as two lesion boxes
    return mask


@pytest.mark.parametrize("name", IMAGE_NOISES)
@pytest.mark.parametrize("feather", [0.0, 0.05])
def test_the_noise_changes_pixels_inside_the_region_only(
    name: str, feather: float, ct: np.ndarray, lesion: np.ndarray
) -> None:
    out = LocalNoise(name, severity=4, seed=3, region=lesion, feather=feather)(ct)
    assert out.dtype == ct.dtype and out.shape == ct.shape
    changed = (out != ct)[0]
    assert changed.any(), f"local {name} changed nothing"
    assert not (changed & ~lesion).any(), f"local {name} changed pixels outside the region"
    assert np.array_equal(out[0][~lesion], ct[0][~lesion])
    # where the weight is 1 the pixels are the global noise's own (the same draw), k-space noises included
    full = region_weights(lesion, feather) == 1.0
    assert full.sum() > 0.3 * lesion.sum()
    global_noise = get_noise(name).apply(ct, severity=4, seed=3)
    assert np.array_equal(out[0][full], global_noise[0][full])


def test_a_smooth_edge_ramps_inward(ct: np.ndarray, lesion: np.ndarray) -> None:
    weights = region_weights(lesion, 0.05)
    assert weights[~lesion].max() == 0.0 and weights[lesion].min() > 0.0
    assert 0.0 < weights[30, 75] < 1.0 and weights[50, 75] == 1.0  # the border row vs the middle
    assert np.array_equal(region_weights(lesion, 0.0), lesion.astype(float))
    tiny = np.zeros((128, 128), dtype=bool)
    tiny[60:64, 60:64] = True  # a 4 px lesion keeps a fully corrupted core whatever the feather
    assert region_weights(tiny, 0.05).max() == 1.0


def test_the_random_region_is_seeded_and_the_same_at_every_severity(ct: np.ndarray) -> None:
    first = LocalNoise("rician", severity=3, seed=7)
    out = first(ct)
    region = first.mask(ct.shape[1:])
    assert 0.09 <= region.mean() <= 0.21, "a rectangle of 10-20 % of the image"
    rows, cols = np.nonzero(region)
    assert region[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all(), "one rectangle"
    assert not ((out != ct)[0] & ~region).any()
    assert np.array_equal(out, LocalNoise("rician", severity=3, seed=7)(ct)), "same seed, same result"
    assert np.array_equal(out, get_noise("local-rician").apply(ct, severity=3, seed=7)), "the registry's twin"
    for severity in (1, 5):
        other = LocalNoise("rician", severity=severity, seed=7)
        other(ct)
        assert np.array_equal(other.mask(ct.shape[1:]), region), "the place does not depend on the severity"
    moved = LocalNoise("rician", severity=3, seed=8)
    moved(ct)
    assert not np.array_equal(moved.mask(ct.shape[1:]), region)
    assert np.array_equal(first(ct, randomize=False), out), "randomize=False repeats the last draw"


def test_array_and_dict_twins_are_equal(ct: np.ndarray, lesion: np.ndarray) -> None:
    for name in ("spike", "blur"):
        array = LocalNoise(name, severity=3, seed=5)(ct)
        sample = LocalNoised(keys="image", noise=name, severity=3, seed=5)({"image": ct, "label": 1})
        assert np.array_equal(sample["image"], array) and sample["label"] == 1
        given = LocalNoise(name, severity=3, seed=5, region=lesion)(ct)
        by_key = LocalNoised(keys="image", noise=name, severity=3, seed=5, region_key="lesion")
        assert np.array_equal(by_key({"image": ct, "lesion": lesion})["image"], given)
        fixed = LocalNoised(keys="image", noise=name, severity=3, seed=5, region=lesion)
        assert np.array_equal(fixed({"image": ct})["image"], given)


def test_torch_volumes_and_resized_regions(ct: np.ndarray, lesion: np.ndarray) -> None:
    meta = MetaTensor(torch.from_numpy(ct.astype(np.float32)), meta={"filename_or_obj": "CT_small.dcm"})
    out = LocalNoise("motion", severity=3, seed=0, region=lesion)(meta)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "CT_small.dcm"
    assert torch.equal(out[0][torch.from_numpy(~lesion)], meta[0][torch.from_numpy(~lesion)])
    volume = dicom_pixels("emri_small.dcm")  # (1, 64, 64, 10): a 128 px region is resized to the plane
    noisy = LocalNoise("ghosting", severity=4, seed=0, region=lesion)(volume)
    small = np.zeros((64, 64), dtype=bool)
    small[15:35, 25:50] = small[45:55, 5:15] = True
    changed = (noisy != volume)[0].any(axis=-1)
    assert changed.any() and not (changed & ~small).any()


def test_bad_input_is_named(ct: np.ndarray) -> None:
    with pytest.raises(ValueError, match="'typo' is a text noise"):
        LocalNoise("typo")
    with pytest.raises(ValueError, match="unknown noise 'fog'"):
        get_noise("local-fog")
    with pytest.raises(ValueError, match="already local"):
        local_noise_name("local-blur")
    with pytest.raises(ValueError, match="region is empty"):
        LocalNoise("blur", region=np.zeros((128, 128)))(ct)
    with pytest.raises(ValueError, match="does not fit"):
        LocalNoise("blur", region=np.ones((4, 4, 4)))(ct)


def test_registry_names_local_noises_apart() -> None:
    assert local_noises() == [f"local-{n}" for n in IMAGE_NOISES]
    assert not any(n.startswith("local-") for n in list_noises()), "callers of list_noises see global noises"
    spec = get_noise("local-bias_field")
    assert spec.modality == "image" and spec.levels == get_noise("bias_field").levels
    assert base_noise("local-bias_field") == "bias_field" and base_noise("blur") == "blur"
    assert parse_noise_list("blur,local-blur", "image") == ["blur", "local-blur"]


def test_slake_lesion_region_from_the_real_detection_boxes(data_dir: Path) -> None:
    slake = data_dir / "slake"
    found = lesion_region(slake / "imgs/xmlab102/source.jpg")  # one box: Lung Cancer [289, 301, 17, 22]
    assert found is not None and found.labels == ("Lung Cancer",) and found.source == "boxes"
    rows, cols = np.nonzero(found.mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (301, 322, 289, 305)
    assert found.mask.sum() == 17 * 22
    by_key = lesion_region("slake/xmlab102/source.jpg", root=slake)
    assert by_key is not None and np.array_equal(by_key.mask, found.mask)
    assert lesion_region(slake / "imgs/xmlab1/source.jpg") is None, "organ boxes (Liver) are not lesions"
    assert lesion_region(slake / "imgs/xmlab3/source.jpg") is None, "no boxes"
    rad = load_dataset(f"vqa-rad:{data_dir / 'vqa_rad'}", "test")[0]
    assert lesion_region(rad.image) is None, "VQA-RAD has no lesion regions"


def test_the_bench_view_of_a_slake_row_is_corrupted_on_its_lesion(data_dir: Path) -> None:
    row = next(
        r
        for r in load_dataset(f"slake:{data_dir / 'slake'}", "test")
        if r.image_key == "slake/xmlab102/source.jpg"
    )
    view = load_view(row.image, 128)[None]  # (1, 128, 128) uint8; the 512 px lesion box shrinks with it
    local = noisy_image(view, row, "local-spike", 3, "0")
    changed = (local != view)[0]
    rows, cols = np.nonzero(changed)
    assert changed.any() and 74 <= rows.min() and rows.max() <= 81 and 71 <= cols.min() and cols.max() <= 77
    assert np.array_equal(noisy_image(view, row, "local-spike", 3, "0"), local)
    global_view = noisy_image(view, row, "spike", 3, "0")
    assert (global_view != view)[0].sum() > 20 * changed.sum()


def test_preview_shows_local_noise(
    tmp_path: Path, ct: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = render_noise_grid(ct, ["blur", "local-blur"], severities=(3,), tile=64)
    assert grid.psnr["local-blur"][0] > grid.psnr["blur"][0], "a local noise changes less of the image"
    assert (
        main(
            [
                "noise",
                "preview",
                "--noises",
                "spike",
                "--severities",
                "3",
                "--local",
                "--size",
                "128",
                "--tile",
                "64",
                "--out",
                str(tmp_path / "local.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "local region: seeded random rectangle" in out and "local-spike" in out
    assert (tmp_path / "local.png").is_file()
    assert main(["noise", "list", "--modality", "image"]) == 0
    assert "local-motion" in capsys.readouterr().out

"""The one data layer: canonical keys, the held-out rule shared with training, the readers, file -> view."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers import dicom_path
from PIL import Image

from monai_imc.data import (
    dataset_images,
    folder_images,
    image_key,
    is_heldout_image,
    load_dataset,
    load_view,
    read_vqa_rad,
    source_rows,
)
from monai_imc.dicom.views import dataset_views
from monai_imc.imageio import display_view, read_image


def _by_dataset(rows) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r.dataset, set()).add(r.image_key)
    return out


def test_benchmark_validation_images_are_exactly_the_images_training_held_out(data_dir: Path) -> None:
    from monai_imc.reference.train import training_rows

    train, heldout = training_rows(data_dir)
    held, trained = _by_dataset(heldout), _by_dataset(train)
    specs = {"slake": f"slake:{data_dir / 'slake'}", "vqa_rad": f"vqa-rad:{data_dir / 'vqa_rad'}"}
    for dataset, spec in specs.items():
        validate = load_dataset(spec, "validate")
        assert {r.image_key for r in validate} == held[dataset], dataset
        assert {r.image_key for r in load_dataset(spec, "train")} == trained[dataset], dataset
        assert {r.split for r in validate} == {"validate"}
        assert all(r.image.is_file() for r in validate)
    # the keys are the files' own paths: VQA-RAD's include images/ (the key the benchmark once got wrong)
    rad = load_dataset(specs["vqa_rad"], "validate")
    assert all(r.image_key == f"vqa_rad/{r.image.relative_to(data_dir / 'vqa_rad').as_posix()}" for r in rad)
    assert (len(held["slake"]), len(held["vqa_rad"])) == (20, 8)


def test_test_split_is_the_source_test_split_and_never_held_out_or_trained(data_dir: Path) -> None:
    test = load_dataset(f"slake:{data_dir / 'slake'}", "test")
    assert test == source_rows("slake", data_dir / "slake", "test")
    pool = {
        r.image_key for s in ("train", "validate") for r in load_dataset(f"slake:{data_dir / 'slake'}", s)
    }
    assert not pool & {r.image_key for r in test}


def test_vqa_rad_official_json_and_qa_jsonl_give_the_same_rows(data_dir: Path, tmp_path: Path) -> None:
    official = tmp_path / "vqa_rad"
    official.mkdir()
    (official / "VQA_RAD_Dataset_Public.json").symlink_to(
        data_dir / "vqa_rad" / "VQA_RAD_Dataset_Public.json"
    )
    (official / "images").symlink_to(data_dir / "vqa_rad" / "images")
    for split in ("train", "validate", "test"):
        ours = read_vqa_rad(data_dir / "vqa_rad", split)
        theirs = read_vqa_rad(official, split)
        assert [(r.image_key, r.question, r.answer, r.closed, r.region) for r in ours] == [
            (r.image_key, r.question, r.answer, r.closed, r.region) for r in theirs
        ]
    with pytest.raises(FileNotFoundError, match="qa.jsonl or VQA_RAD_Dataset_Public.json"):
        read_vqa_rad(tmp_path, "test")


def test_image_key_and_held_out_rule() -> None:
    assert image_key("vqa_rad", Path("images") / "synpic1.jpg") == "vqa_rad/images/synpic1.jpg"
    assert image_key("slake", "xmlab1/source.jpg") == "slake/xmlab1/source.jpg"
    with pytest.raises(ValueError, match="dataset and a path"):
        image_key("slake", "")
    keys = [image_key("slake", f"xmlab{i}/source.jpg") for i in range(2000)]
    assert 0.03 < sum(map(is_heldout_image, keys)) / len(keys) < 0.07


def test_split_and_spec_errors_name_the_problem(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_dataset(f"slake:{data_dir / 'slake'}", "dev")
    with pytest.raises(ValueError, match="ships no split 'validate'"):
        source_rows("vqa_rad", data_dir / "vqa_rad", "validate")
    with pytest.raises(FileNotFoundError, match="SLAKE split file missing"):
        load_dataset("slake:/nonexistent", "test")


def test_dataset_images_by_split_folder_and_jsonl(data_dir: Path, tmp_path: Path) -> None:
    val = dataset_images(f"vqa-rad:{data_dir / 'vqa_rad'}", ["validate"])
    assert len(val) == 8 and len(set(val)) == 8
    both = dataset_images(f"slake:{data_dir / 'slake'}", ["train", "validate"])
    assert len(both) == len(
        {r.image for s in ("train", "validate") for r in source_rows("slake", data_dir / "slake", s)}
    )
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    assert folder_images(tmp_path) == dataset_images(str(tmp_path)) == [tmp_path / "a.png"]
    (tmp_path / "site.jsonl").write_text(
        json.dumps({"image": "a.png", "question": "q?", "answer": "no"}) + "\n"
    )
    assert dataset_images(f"jsonl:{tmp_path / 'site.jsonl'}") == [tmp_path / "a.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM, PNG or JPEG"):
        folder_images(tmp_path / "empty")


def test_dicom_view_is_the_apps_view() -> None:
    for name in ("CT_small.dcm", "MR_small.dcm", "US1_UNCI.dcm", "emri_small.dcm"):
        app = dataset_views(pydicom.dcmread(dicom_path(name)))[0].pixels
        assert np.array_equal(load_view(dicom_path(name)), app), name
    # CT_small has no window in the file: the app's CT preset, not the old percentile window
    ct = load_view(dicom_path("CT_small.dcm"))
    old = display_view(read_image(dicom_path("CT_small.dcm")).array)
    assert np.abs(ct.astype(int) - old.astype(int)).mean() > 10
    small = load_view(dicom_path("US1_UNCI.dcm"), max_size=64)
    assert small.dtype == np.uint8 and max(small.shape[:2]) == 64 and small.shape[2] == 3


def test_picture_view_passes_8_bit_pictures_as_stored(data_dir: Path, tmp_path: Path) -> None:
    jpeg = data_dir / "vqa_rad" / "images" / "synpic54610.jpg"
    with Image.open(jpeg) as im:
        stored = np.asarray(im.convert("L") if im.mode != "RGB" else im)
    view = load_view(jpeg)
    assert view.dtype == np.uint8 and view.shape[:2] == stored.shape[:2]
    gray16 = np.arange(400, dtype=np.uint16).reshape(20, 20) * 100
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    assert load_view(tmp_path / "gray16.png").max() == 255


def test_unreadable_files_raise_naming_the_file(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    sr = get_testdata_file("test-SR.dcm")
    with pytest.raises(ValueError, match="test-SR.dcm"):
        load_view(sr)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="bad.png"):
        load_view(bad)
    with pytest.raises(FileNotFoundError, match="missing.dcm"):
        load_view(tmp_path / "missing.dcm")

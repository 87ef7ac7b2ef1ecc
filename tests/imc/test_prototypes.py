"""PrototypeBank: built through the model's own encoder, saved as safetensors + manifest, model-checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

BANK_NOISES, BANK_SEVERITIES = ["rician", "blur", "motion"], [1, 3, 5]

from monai_imc.models import load_model
from monai_imc.models.tiny import build_tiny_checkpoint
from monai_imc.prototypes import BankMismatchError, PrototypeBank, build_bank, model_fingerprint


def test_bank_holds_every_statistic(bank: PrototypeBank, tiny_llava) -> None:
    dim = tiny_llava.projector.linear_1.in_features
    t = bank.tensors
    assert bank.noises == BANK_NOISES and bank.severities == BANK_SEVERITIES
    assert t["class_means"].shape == (1 + 3 * 3, 2 * dim) and t["precision"].shape == (2 * dim, 2 * dim)
    assert t["pooled_shift"].shape == (3, 3, dim) and t["clean_prototype"].shape == (dim,)
    assert t["token_shift"].shape == (3, 3, 16, dim), "LLaVA has a fixed token grid: per-token shifts"
    assert t["ridge_maps"].shape == (3, dim + 1, dim)
    assert t["strength"].shape == (3, 3) and set(t["strength"].flatten().tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert 0.0 < bank.gate_threshold < 1.0
    manifest = bank.manifest
    assert len(manifest["images"]["train"]) == 12 and len(manifest["images"]["validation"]) == 4
    assert not set(manifest["images"]["train"]) & set(manifest["images"]["validation"])
    assert manifest["noise_parameters"]["blur"][0] == {"sigma": 0.003}
    assert manifest["fingerprint"]["architecture"] == "LlavaForConditionalGeneration"


def test_bank_is_deterministic(bank: PrototypeBank, tiny_llava, views) -> None:
    again = build_bank(tiny_llava, views, BANK_NOISES, BANK_SEVERITIES, seed=0, validation_fraction=0.25)
    for name, tensor in bank.tensors.items():
        torch.testing.assert_close(again.tensors[name], tensor, msg=name)


def test_save_and_load_round_trip(bank: PrototypeBank, saved_bank: Path, tiny_llava) -> None:
    loaded = PrototypeBank.load(saved_bank, model=tiny_llava)
    assert sorted(p.name for p in saved_bank.iterdir()) == ["bank.safetensors", "manifest.json"]
    for name, tensor in bank.tensors.items():
        torch.testing.assert_close(loaded.tensors[name], tensor)
    assert loaded.bank_hash and loaded.bank_hash == json.loads((saved_bank / "manifest.json").read_text())["bank_sha256"]
    assert loaded.strength("blur", 3) == float(bank.tensors["strength"][1, 1])


def test_another_model_is_refused(saved_bank: Path, tmp_path: Path) -> None:
    other = load_model(str(build_tiny_checkpoint("llava", tmp_path / "other", seed=1)), device="cpu")
    with pytest.raises(BankMismatchError, match="vision_weights_sha256"):
        PrototypeBank.load(saved_bank, model=other)


def test_fingerprint_is_the_same_in_bfloat16(tiny_llava) -> None:
    bf16 = load_model(tiny_llava.name, device="cpu", dtype="bfloat16")
    assert model_fingerprint(bf16) == model_fingerprint(tiny_llava)


def test_tampered_or_missing_files_are_named(saved_bank: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bank"
    shutil.copytree(saved_bank, copy)
    data = bytearray((copy / "bank.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "bank.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="do not match the manifest"):
        PrototypeBank.load(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        PrototypeBank.load(copy)


def test_bad_arguments(tiny_llava, views) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        build_bank(tiny_llava, views[:1], ["blur"])
    with pytest.raises(ValueError, match="'typo' is a text noise"):
        build_bank(tiny_llava, views, ["typo"])
    with pytest.raises(ValueError, match="severity 7"):
        build_bank(tiny_llava, views, ["blur"], severities=[7])


def test_cli_builds_a_bank_from_a_folder(tiny_llava, views, tmp_path: Path) -> None:
    from PIL import Image

    from monai_imc.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    for i, view in enumerate(views[:6]):
        Image.fromarray(view).save(folder / f"view{i}.png")
    (folder / "notes.png").write_text("not an image")
    out = tmp_path / "bank"
    code = main(["prototypes", "build", "--model", tiny_llava.name, "--images", str(folder), "--noises", "blur",
                 "--severities", "1,5", "--out", str(out)])
    assert code == 0
    bank = PrototypeBank.load(out, model=tiny_llava)
    assert bank.noises == ["blur"] and len(bank.manifest["images"]["train"]) + len(bank.manifest["images"]["validation"]) == 6
    assert np.isfinite(bank.tensors["precision"].numpy()).all()

"""PrototypeBank: built through the model's own encoder, saved as safetensors + manifest, model-checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

BANK_NOISES, BANK_SEVERITIES = ["rician", "blur", "motion"], [1, 3, 5]

from monai_imc.bank_build import build_bank
from monai_imc.models import load_model
from monai_imc.models.tiny import build_tiny_checkpoint
from monai_imc.perceive import ArtifactPerceiver
from monai_imc.prototypes import BankMismatchError, PrototypeBank, descriptor, model_fingerprint
from monai_imc.quality import MEASURES


def test_the_descriptor_is_the_tokens_mean_and_population_std() -> None:
    # a large mean beside a small spread: the variance must not lose its digits to the mean
    tokens = 100.0 + 0.5 * torch.randn(49, 64, generator=torch.Generator().manual_seed(0))
    exact = tokens.double()
    expected = torch.cat([exact.mean(0), exact.std(0, unbiased=False)])
    d = descriptor(tokens.t().contiguous().t())  # the tower's tokens come transposed (not contiguous)
    assert d.shape == (128,) and d.dtype == torch.float32
    assert torch.allclose(d.double(), expected, rtol=0, atol=2e-5)


def test_bank_holds_every_statistic(bank: PrototypeBank, tiny_llava) -> None:
    dim = tiny_llava.projector.linear_1.in_features
    t = bank.tensors
    assert bank.noises == BANK_NOISES and bank.severities == BANK_SEVERITIES
    width = 2 * dim + len(MEASURES)  # token mean and std, then the physics measures
    assert t["descriptor_center"].shape == (width,) and t["descriptor_scale"].shape == (width,)
    perceivers = bank.manifest["choices"]["perceivers"]
    assert set(perceivers) == {"fused", "tokens"}, "one discriminant with views, one without"
    assert perceivers["tokens"]["parts"] == "tokens" and perceivers["fused"]["parts"] in (
        "physics",
        "tokens+physics",
    )
    for name, choice in perceivers.items():
        used = int(t[f"perceiver.{name}.mask"].sum())
        rows = t[f"perceiver.{name}.means"].shape[0]
        if choice["kinds"] == 1:  # one mean per class: clean, then 3 noises x 3 severities
            assert rows == 1 + 3 * 3 and f"perceiver.{name}.owner" not in t
        else:  # a mixture: one mean per kind of image a class holds, every class owning at least one
            owner = t[f"perceiver.{name}.owner"]
            assert owner.shape == (rows,) and sorted(set(owner.tolist())) == list(range(1 + 3 * 3))
            assert 1 + 3 * 3 < rows <= choice["kinds"] * (1 + 3 * 3)
        assert t[f"perceiver.{name}.means"].shape == (rows, used)
        assert t[f"perceiver.{name}.precision"].shape == (used, used)
        assert 0.0 < choice["gate_threshold"] < 1.0 and choice["range_threshold"] > 0
        assert 0.0 <= choice["validation"]["clean_false_alarm"] <= 1.0
    assert (
        int(t["perceiver.tokens.mask"][: 2 * dim].sum()) == 2 * dim
        and not t["perceiver.tokens.mask"][2 * dim :].any()
    )
    assert t["pooled_shift"].shape == (3, 3, dim) and t["clean_prototype"].shape == (dim,)
    assert t["token_shift"].shape == (3, 3, 16, dim), "LLaVA has a fixed token grid: per-token shifts"
    assert t["ridge_maps"].shape == (3, dim + 1, dim)
    assert t["strength"].shape == (3, 3) and set(t["strength"].flatten().tolist()) <= {
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    }
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
    assert (
        loaded.bank_hash
        and loaded.bank_hash == json.loads((saved_bank / "manifest.json").read_text())["bank_sha256"]
    )
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
    clean = tmp_path / "clean"
    clean.mkdir()
    for i, view in enumerate(views[6:10]):
        Image.fromarray(view).save(clean / f"clean{i}.png")
    out = tmp_path / "bank"
    code = main(
        [
            "prototypes",
            "build",
            "--model",
            tiny_llava.name,
            "--images",
            str(folder),
            "--noises",
            "blur",
            "--severities",
            "1,5",
            "--clean-images",
            str(clean),
            "--clean-images",
            str(folder),  # the same images as --images: skipped, not counted twice
            "--out",
            str(out),
        ]
    )
    assert code == 0
    bank = PrototypeBank.load(out, model=tiny_llava)
    assert (
        bank.noises == ["blur"]
        and len(bank.manifest["images"]["train"]) + len(bank.manifest["images"]["validation"]) == 6
    )
    assert np.isfinite(bank.tensors["perceiver.fused.precision"].numpy()).all()
    clean_ids = bank.manifest["clean_images"]["train"] + bank.manifest["clean_images"]["validation"]
    assert sorted(Path(i).name for i in clean_ids) == [f"clean{i}.png" for i in range(4)]


def test_clean_only_images_join_the_clean_class_not_the_calibration(tiny_llava, views) -> None:
    plain = build_bank(tiny_llava, views[:8], ["blur"], [1, 5], seed=0)
    wider = build_bank(
        tiny_llava, views[:8], ["blur"], [1, 5], seed=0, clean_images=views[8:16], clean_image_ids=list("abcdefgh")
    )
    clean = wider.manifest["clean_images"]
    assert len(clean["train"]) == 6 and len(clean["validation"]) == 2, "split like the images: a quarter held out"
    assert sorted(clean["train"] + clean["validation"]) == list("abcdefgh")
    assert plain.manifest["clean_images"] == {"train": [], "validation": []}
    for name in ("ridge_maps", "pooled_shift", "clean_prototype", "strength"):  # no noisy copies: maps unchanged
        torch.testing.assert_close(wider.tensors[name], plain.tensors[name], msg=name)
    assert not torch.allclose(wider.tensors["perceiver.fused.means"], plain.tensors["perceiver.fused.means"])
    for choice in wider.manifest["choices"]["perceivers"].values():
        assert choice["gate_min_severity"] in (1, 2)


def test_low_rank_bank_for_wide_tokens(bank: PrototypeBank, tiny_llava, views) -> None:
    """A wide tower's bank: ridge maps in the span of the leading token directions, the token descriptor on
    principal components; it calibrates toward clean as the full-width bank does, at a fraction of the size."""
    from monai_imc.calibrate import calibrate_tokens
    from monai_imc.prototypes import corrupt

    dim = tiny_llava.encode_images(views[:1]).tokens[0].shape[1]
    small = build_bank(tiny_llava, views, ["blur"], [5], seed=0, ridge_rank=dim // 2, descriptor_rank=8)
    assert small.tensors["ridge_basis"].shape == (dim, dim // 2)
    assert small.tensors["ridge_maps"].shape == (1, dim // 2 + 1, dim // 2)
    assert small.tensors["descriptor_projection"].shape[1] == 8
    basis = small.tensors["ridge_basis"].double()
    assert torch.allclose(basis.T @ basis, torch.eye(dim // 2, dtype=torch.float64), atol=1e-5)
    # on the bank's own images, strength 1 moves blurred tokens toward their clean tokens
    clean = tiny_llava.encode_images(views).tokens
    noisy = tiny_llava.encode_images([corrupt(v, "blur", 5, 0) for v in views]).tokens
    before = sum(float(((n - c) ** 2).mean()) for n, c in zip(noisy, clean))
    after = sum(float(((calibrate_tokens(small, n, "blur", 5, 1.0) - c) ** 2).mean()) for n, c in zip(noisy, clean))
    assert after < before
    perception = ArtifactPerceiver(small).perceive(tiny_llava.encode_images(views[:2]), views=views[:2])
    assert len(perception) == 2 and all(p.verdict in ("clean", "artifact", "not assessable") for p in perception)


def test_a_bank_reads_only_the_measures_it_was_built_with(tiny_llava, views) -> None:
    chosen = ["blockiness", "noise_sigma"]
    bank = build_bank(tiny_llava, views[:8], ["blur"], [1, 5], seed=0, measures=chosen)
    dim = tiny_llava.encode_images(views[:1]).tokens[0].shape[1]
    assert bank.manifest["measures"] == chosen and bank.tensors["descriptor_center"].shape == (2 * dim + 2,)
    perceiver = ArtifactPerceiver(bank)
    assert perceiver.measure_names == tuple(chosen)
    found = perceiver.perceive(tiny_llava.encode_images(views[8:10]), views=views[8:10])
    assert all(p.verdict in ("clean", "artifact", "not assessable") and p.descriptor == "fused" for p in found)
    assert all(set(p.measures or {}) >= set(chosen) for p in found if p.assessable)
    with pytest.raises(ValueError, match="unknown physics measures"):
        build_bank(tiny_llava, views[:8], ["blur"], [5], measures=["noise_sigma", "sharpnes"])


def test_the_discriminant_scores_and_distances_are_their_definitions() -> None:
    from monai_imc.discriminant import LinearDiscriminant

    g = torch.Generator().manual_seed(0)
    z, labels = torch.randn(300, 12, generator=g), torch.arange(300) % 6
    lda = LinearDiscriminant.fit(z, labels, n_classes=6, shrinkage=0.1, log_prior=torch.full((6,), -1.8))
    x = 3.0 * torch.randn(20, 12, generator=g)
    diff = (x[:, None, :] - lda.means[None]).double()
    squared = torch.einsum("ncd,de,nce->nc", diff, lda.precision.double(), diff)  # (x - m)^T P (x - m)
    assert torch.allclose(lda.distances(x).double(), squared.min(dim=1).values / 12, rtol=1e-6, atol=1e-6)
    linear = -0.5 * squared + lda.log_prior.double()  # the log posterior up to a constant of x
    assert torch.allclose(torch.softmax(linear, 1), lda.posteriors(x).double(), atol=1e-5)

"""ArtifactPerceiver, PDCCalibrator and IMCPipeline on a tiny LLaVA with a bank of real DICOM views."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from monai_imc.calibrate import PDCCalibrator, calibrate_tokens
from monai_imc.perceive import ArtifactPerceiver
from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import PrototypeBank, corrupt, variant_seed


def test_perception_is_a_distribution_over_clean_and_noises(bank: PrototypeBank, tiny_llava, views) -> None:
    perceptions = ArtifactPerceiver(bank).perceive(tiny_llava.encode_images(views[:3]))
    assert len(perceptions) == 3
    for p in perceptions:
        assert set(p.probabilities) == {"clean", *bank.noises}
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.p_clean == p.probabilities["clean"]
        assert (p.noise is None) == (p.severity is None)
        assert p.flagged == (1.0 - p.p_clean >= bank.gate_threshold and p.in_range)


def test_images_outside_the_banks_range_are_never_calibrated(bank: PrototypeBank, tiny_llava, views) -> None:
    perceiver = ArtifactPerceiver(bank, gate_threshold=0.0)  # the gate alone would flag every image
    assert bank.range_threshold is not None and bank.range_threshold > 0
    inside = perceiver.perceive(tiny_llava.encode_images(views))
    assert np.mean([p.in_range for p in inside]) >= 0.9, "the bank's own kind of image lies within its range"
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # a test pattern, nothing like the bank's medical views
    far = perceiver.perceive(tiny_llava.encode_images([stripes]))[0]
    assert far.distance > bank.range_threshold and not far.in_range and not far.flagged
    features = tiny_llava.encode_images([stripes])
    out, records = PDCCalibrator(bank).calibrate(features, [far])
    assert out is features and not records[0].applied


def test_perceiver_sees_strong_noise_more_than_clean(bank: PrototypeBank, tiny_llava, views) -> None:
    perceiver = ArtifactPerceiver(bank)
    clean = perceiver.perceive(tiny_llava.encode_images(views))
    noisy = perceiver.perceive(tiny_llava.encode_images([corrupt(v, "rician", 5, 100 + i) for i, v in enumerate(views)]))
    assert np.mean([p.probabilities["rician"] for p in noisy]) > np.mean([p.probabilities["rician"] for p in clean])
    assert np.mean([p.p_clean for p in clean]) > np.mean([p.p_clean for p in noisy])


def test_clean_gate_passes_features_unchanged(bank: PrototypeBank, tiny_llava, views) -> None:
    features = tiny_llava.encode_images(views[:2])
    perceptions = ArtifactPerceiver(bank, gate_threshold=1.01).perceive(features)  # nothing can be flagged
    out, records = PDCCalibrator(bank).calibrate(features, perceptions)
    assert out is features
    assert [r.applied for r in records] == [False, False] and records[0].reason == "gate: clean"


def test_ridge_maps_move_training_tokens_toward_clean(bank: PrototypeBank, tiny_llava, views) -> None:
    train = [int(i) for i in bank.manifest["images"]["train"]]
    for n_i, noise in enumerate(bank.noises):
        before = after = 0.0
        for i in train:
            clean = tiny_llava.encode_images([views[i]]).tokens[0]
            for severity in bank.severities:
                noisy = tiny_llava.encode_images([corrupt(views[i], noise, severity, variant_seed(0, i, n_i))]).tokens[0]
                fixed = calibrate_tokens(bank, noisy, noise, severity, strength=1.0)
                before += float(((noisy - clean) ** 2).sum())
                after += float(((fixed - clean) ** 2).sum())
        assert after < before, f"{noise}: the least-squares map must not move its own training pairs away"


def test_shift_variant_and_calibration_records(bank: PrototypeBank, tiny_llava, views) -> None:
    forced = dataclasses.replace(bank, tensors={**bank.tensors, "strength": torch.ones_like(bank.tensors["strength"])})
    noisy = corrupt(views[0], "rician", 5, 7)
    features = tiny_llava.encode_images([noisy])
    perception = ArtifactPerceiver(forced, gate_threshold=0.0).perceive(features)
    for variant in ("ridge", "shift"):
        out, records = PDCCalibrator(forced, variant=variant).calibrate(features, perception)
        record = records[0]
        assert record.applied and record.variant == variant and record.noise == perception[0].noise
        assert record.strength == pytest.approx(perception[0].confidence)
        assert record.shift_norm > 0 and not torch.equal(out.tokens[0], features.tokens[0])
        assert out.tokens[0].shape == features.tokens[0].shape
    with pytest.raises(ValueError, match="variant 'median'"):
        PDCCalibrator(bank, variant="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 perceptions for 1 images"):
        PDCCalibrator(bank).calibrate(features, perception * 2)


def test_pipeline_uses_one_vision_pass_and_keeps_every_result(bank: PrototypeBank, tiny_llava, views) -> None:
    forced = dataclasses.replace(bank, tensors={**bank.tensors, "strength": torch.ones_like(bank.tensors["strength"])})
    pipeline = IMCPipeline(tiny_llava, forced)
    pipeline.perceiver.gate_threshold = 0.0  # flag everything, so calibration runs
    calls = []
    handle = tiny_llava.vision_tower.register_forward_hook(lambda *a: calls.append(1))
    try:
        noisy = corrupt(views[1], "rician", 5, 3)
        result = pipeline.answer(noisy, "What modality is this?", max_new_tokens=6)
        assert len(calls) == 1, "perceive, calibrate and answer share one vision pass"
        assert result.calibration.applied and result.pdc and result.perception.noise is not None
        plain = pipeline.answer(noisy, "What modality is this?", pdc=False, max_new_tokens=6)
        expected = tiny_llava.generate(tiny_llava.encode_images([noisy]), "What modality is this?", max_new_tokens=6)
        assert plain.answer == expected and not plain.calibration.applied and plain.calibration.reason == "disabled"
    finally:
        handle.remove()

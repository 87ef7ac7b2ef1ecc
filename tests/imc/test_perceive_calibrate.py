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
from monai_imc.workers import BESIDE_ENCODE


def test_perception_is_a_distribution_over_clean_and_noises(bank: PrototypeBank, tiny_llava, views) -> None:
    features = tiny_llava.encode_images(views[:3])
    for with_views in (False, True):
        perceptions = ArtifactPerceiver(bank).perceive(features, views=views[:3] if with_views else None)
        assert len(perceptions) == 3
        for p in perceptions:
            assert p.descriptor == ("fused" if with_views else "tokens")
            assert (p.measures is not None) == with_views
            assert p.verdict in ("clean", "artifact", "not assessable")
            if not p.assessable:
                continue
            assert set(p.probabilities) == {"clean", *bank.noises}
            assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
            assert p.p_clean == p.probabilities["clean"]
            assert p.flagged == (p.verdict == "artifact") == (p.noise is not None) == (p.severity is not None)
            name = "fused" if with_views else "tokens"
            choice = bank.manifest["choices"]["perceivers"][name]
            assert p.flagged == (p.artifact_probability >= choice["gate_threshold"])
            if choice["gate_min_severity"] == 1:
                assert p.artifact_probability == pytest.approx(1.0 - p.p_clean, abs=1e-6)
            else:  # the faintest level is left out of what the gate reads
                assert p.artifact_probability <= 1.0 - p.p_clean + 1e-6
            if p.verdict == "clean":
                assert p.confidence == pytest.approx(1.0 - p.artifact_probability, abs=1e-6)


def test_images_outside_the_banks_range_are_not_assessable(bank: PrototypeBank, tiny_llava, views) -> None:
    perceiver = ArtifactPerceiver(bank, gate_threshold=0.0)  # the gate alone would flag every image
    assert perceiver.range_threshold is not None and perceiver.range_threshold > 0
    inside = perceiver.perceive(tiny_llava.encode_images(views), views=views)
    # the range comes from only 4 validation images in this fixture (16 views, 3 noises): most, not all,
    # of the bank's own kind of image lie inside it
    assert np.mean([p.in_range for p in inside]) >= 0.75, "the bank's own kind of image lies within its range"
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # a test pattern, nothing like the bank's medical views
    features = tiny_llava.encode_images([stripes])
    far = perceiver.perceive(features, views=[stripes])[0]
    assert far.verdict == "not assessable" and "outside the prototype bank's range" in far.summary
    assert far.distance > perceiver.range_threshold and not far.flagged and far.noise is None
    out, records = PDCCalibrator(bank).calibrate(features, [far])
    assert out is features and not records[0].applied and records[0].reason.startswith("not assessable")


@pytest.mark.parametrize(
    ("view", "words"),
    [
        (np.full((1, 1), 128, np.uint8), "single row"),
        (np.full((64, 64), 77, np.uint8), "constant"),
        (np.tile(np.arange(4000) % 256, (1, 1)).astype(np.uint8), "single row"),
        (np.tile(np.arange(8) * 30, (8, 1)).astype(np.uint8), "too small"),
        (np.where(np.eye(64) > 0, np.nan, 0.5).astype(np.float32), "NaN"),
    ],
)
def test_degenerate_images_are_not_assessable_and_never_calibrated(
    bank: PrototypeBank, tiny_llava, view: np.ndarray, words: str
) -> None:
    shown = np.nan_to_num(view).astype(np.uint8) if view.dtype != np.uint8 else view
    features = tiny_llava.encode_images([shown])
    p = ArtifactPerceiver(bank, gate_threshold=0.0).perceive(features, views=[view])[0]
    assert p.verdict == "not assessable" and words in (p.reason or "")
    assert p.noise is None and p.severity is None and not p.flagged and p.artifact_probability == 0.0
    assert p.summary.startswith("not assessable: degenerate image")
    out, records = PDCCalibrator(bank).calibrate(features, [p])
    assert out is features and not records[0].applied


def test_non_finite_features_are_not_assessable(bank: PrototypeBank, tiny_llava, views) -> None:
    tokens = tiny_llava.encode_images(views[:1]).tokens[0].clone()
    tokens[0, 0] = float("nan")
    p = ArtifactPerceiver(bank).perceive_tokens(tokens, views[0])
    assert p.verdict == "not assessable" and "not finite" in (p.reason or "")


def test_summaries_say_what_was_found(bank: PrototypeBank, tiny_llava, views) -> None:
    noisy = corrupt(views[0], "rician", 5, 7)
    features = tiny_llava.encode_images([views[0], noisy])
    loud = ArtifactPerceiver(bank, gate_threshold=0.0).perceive(features, views=[views[0], noisy])
    quiet = ArtifactPerceiver(bank, gate_threshold=1.01).perceive(features, views=[views[0], noisy])
    for p in loud:
        if p.assessable:
            assert p.verdict == "artifact" and p.summary.startswith(
                f"{p.noise} artifact, severity {p.severity} of 5"
            )
    for p in quiet:
        if p.assessable:
            assert p.verdict == "clean" and p.summary.startswith("no artifact detected")


def test_views_must_match_the_images(bank: PrototypeBank, tiny_llava, views) -> None:
    with pytest.raises(ValueError, match="1 views for 2 images"):
        ArtifactPerceiver(bank).perceive(tiny_llava.encode_images(views[:2]), views=views[:1])


def test_a_bank_without_measures_still_perceives_from_tokens(tiny_llava, views) -> None:
    from monai_imc.bank_build import build_bank

    tokens_only = build_bank(tiny_llava, views[:8], ["blur"], [1, 5], seed=0, physics=False)
    assert set(tokens_only.manifest["choices"]["perceivers"]) == {"tokens"}
    p = ArtifactPerceiver(tokens_only).perceive(tiny_llava.encode_images(views[:1]), views=views[:1])[0]
    assert p.descriptor == "tokens" and p.measures is None


def test_perceiver_sees_strong_noise_more_than_clean(bank: PrototypeBank, tiny_llava, views) -> None:
    perceiver = ArtifactPerceiver(bank)
    clean = perceiver.perceive(tiny_llava.encode_images(views))
    noisy = perceiver.perceive(
        tiny_llava.encode_images([corrupt(v, "rician", 5, 100 + i) for i, v in enumerate(views)])
    )
    assert np.mean([p.probabilities["rician"] for p in noisy]) > np.mean(
        [p.probabilities["rician"] for p in clean]
    )
    assert np.mean([p.p_clean for p in clean]) > np.mean([p.p_clean for p in noisy])


def test_clean_gate_passes_features_unchanged(bank: PrototypeBank, tiny_llava, views) -> None:
    features = tiny_llava.encode_images(views[:2])
    perceptions = ArtifactPerceiver(bank, gate_threshold=1.01).perceive(features)  # nothing can be flagged
    out, records = PDCCalibrator(bank).calibrate(features, perceptions)
    assert out is features
    assert [r.applied for r in records] == [False, False]
    assert all(r.reason == "gate: clean" for r, p in zip(records, perceptions) if p.assessable)


def test_ridge_maps_move_training_tokens_toward_clean(bank: PrototypeBank, tiny_llava, views) -> None:
    train = [int(i) for i in bank.manifest["images"]["train"]]
    for n_i, noise in enumerate(bank.noises):
        before = after = 0.0
        for i in train:
            clean = tiny_llava.encode_images([views[i]]).tokens[0]
            for severity in bank.severities:
                noisy = tiny_llava.encode_images(
                    [corrupt(views[i], noise, severity, variant_seed(0, i, n_i))]
                ).tokens[0]
                fixed = calibrate_tokens(bank, noisy, noise, severity, strength=1.0)
                before += float(((noisy - clean) ** 2).sum())
                after += float(((fixed - clean) ** 2).sum())
        assert after < before, f"{noise}: the least-squares map must not move its own training pairs away"


def test_shift_variant_and_calibration_records(bank: PrototypeBank, tiny_llava, views) -> None:
    forced = dataclasses.replace(
        bank, tensors={**bank.tensors, "strength": torch.ones_like(bank.tensors["strength"])}
    )
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


def test_measures_run_beside_the_encode_and_perceive_alike(
    bank: PrototypeBank, tiny_llava, views, monkeypatch
) -> None:
    import threading

    import monai_imc.perceive as perceive_module
    from monai_imc.quality import measure_views

    shown = [views[0], corrupt(views[1], "spike", 4, 5), np.full((64, 64), 9, np.uint8)]
    sent: list[tuple[str, object, int]] = []
    real_beside = perceive_module.beside

    def spy_beside(name, fn, arrays, names):  # the real worker process, recording what was sent to it
        sent.append((name, fn, len(arrays)))
        return real_beside(name, fn, arrays, names)

    monkeypatch.setattr(perceive_module, "beside", spy_beside)
    pipeline = IMCPipeline(tiny_llava, bank)
    features, found = pipeline.encode_and_perceive(shown, modalities=["CT", "CT", "CT"])
    assert sent == [(BESIDE_ENCODE, measure_views, 3)], "one task for the measures' worker process"
    measured_on: list[str] = []
    real = perceive_module.measures_and_vector

    def spy(view, *names):  # the real measures, recording the thread they ran on
        measured_on.append(threading.current_thread().name)
        return real(view, *names)

    monkeypatch.setattr(perceive_module, "measures_and_vector", spy)
    expected = ArtifactPerceiver(bank).perceive(
        tiny_llava.encode_images(shown), views=shown, modalities=["CT"] * 3
    )
    assert measured_on == [threading.current_thread().name] * 2, (
        "perceive alone measures in the caller's thread; the constant view is not assessable: not measured"
    )
    assert [p.verdict for p in found] == [p.verdict for p in expected]
    assert found[2].verdict == "not assessable" and "constant" in (found[2].reason or "")
    for got, want in zip(found[:2], expected[:2]):
        assert got.measures == want.measures and got.noise == want.noise and got.severity == want.severity
        assert got.p_clean == pytest.approx(want.p_clean, abs=1e-6)
    with pytest.raises(ValueError, match="1 measured for 3 images"):
        pipeline.perceiver.perceive(features, views=shown, measured=[None])


def test_pipeline_uses_one_vision_pass_and_keeps_every_result(bank: PrototypeBank, tiny_llava, views) -> None:
    forced = dataclasses.replace(
        bank, tensors={**bank.tensors, "strength": torch.ones_like(bank.tensors["strength"])}
    )
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
        expected = tiny_llava.generate(
            tiny_llava.encode_images([noisy]), "What modality is this?", max_new_tokens=6
        )
        assert (
            plain.answer == expected
            and not plain.calibration.applied
            and plain.calibration.reason == "disabled"
        )
    finally:
        handle.remove()


def test_views_of_a_modality_the_bank_has_no_images_of_are_not_assessable(
    bank: PrototypeBank, tiny_llava, views
) -> None:
    recorded = dataclasses.replace(bank, manifest={**bank.manifest, "modalities": ["CT", "DX", "MR"]})
    perceiver = ArtifactPerceiver(recorded, gate_threshold=0.0)  # the gate alone would flag every image
    features = tiny_llava.encode_images(views[:3])
    us, cr, unknown = perceiver.perceive(features, views=views[:3], modalities=["US", "CR", None])
    assert us.verdict == "not assessable" and "modality US" in us.summary and not us.flagged
    _, records = PDCCalibrator(recorded).calibrate(tiny_llava.encode_images(views[:1]), [us])
    assert not records[0].applied  # never calibrated
    # CR is a projection radiograph like DX; an unknown modality is not held against the view
    assert "modality" not in cr.summary and "modality" not in unknown.summary
    # a bank that does not record its modalities checks none
    unrecorded = ArtifactPerceiver(bank, gate_threshold=0.0).perceive(
        features, views=views[:3], modalities=["US"] * 3
    )
    assert all("modality" not in p.summary for p in unrecorded)
    with pytest.raises(ValueError, match="1 modalities for 3 images"):
        perceiver.perceive(features, views=views[:3], modalities=["CT"])


def test_a_modality_never_gets_the_noises_its_acquisition_cannot_make(
    bank: PrototypeBank, tiny_llava, views
) -> None:
    perceiver = ArtifactPerceiver(bank, gate_threshold=0.0)  # flag every view: the type is what is compared
    assert bank.noises == ["rician", "blur", "motion"]
    assert perceiver.impossible_noises("CT") == ["rician", "motion"], (
        "Rician noise and k-space motion are MR's"
    )
    assert perceiver.impossible_noises("MR") == [] and perceiver.impossible_noises(None) == []
    assert perceiver.impossible_noises("DX") == perceiver.impossible_noises("CR") == ["rician", "motion"]
    shown = [corrupt(v, "rician", 5, 3) for v in views[8:12]]
    features = tiny_llava.encode_images(shown)
    as_ct = perceiver.perceive(features, views=shown, modalities=["CT"] * 4)
    as_mr = perceiver.perceive(features, views=shown, modalities=["MR"] * 4)
    for ct, mr in zip(as_ct, as_mr):
        assert ct.noise == "blur" and ct.probabilities["rician"] == 0.0 and ct.probabilities["motion"] == 0.0
        assert sum(ct.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert any(p.noise == "rician" for p in as_mr), "the same images as MR may be read as Rician noise"


def test_a_thumbnail_is_not_assessable_but_a_wide_view_is(bank: PrototypeBank, tiny_llava, views) -> None:
    """The size rule reads a view's scale (its longer side): a wide crop of a reference-sized view is
    measured like the bank's views; a view a third of their size is a thumbnail."""
    sides = bank.manifest["view_sides"]
    assert sides["long_median"] == 64 and sides["long_min"] <= sides["long_median"] <= sides["long_max"]
    wide = np.ascontiguousarray(views[0][14:50])  # 36 x 64: its shorter side is under 0.75 x 64
    thumbnail = np.ascontiguousarray(views[0][::3, ::3])  # 22 x 22
    perceiver = ArtifactPerceiver(bank)
    found = perceiver.perceive(tiny_llava.encode_images([wide, thumbnail]), views=[wide, thumbnail])
    assert "smaller" not in (found[0].reason or "")
    assert found[1].verdict == "not assessable" and "smaller (22 px)" in (found[1].reason or "")
    # a bank saved before the longer sides were recorded compares with its typical shorter side
    old = dataclasses.replace(bank, manifest={**bank.manifest, "view_sides": {"min": 64.0, "median": 64.0, "max": 64.0}})
    again = ArtifactPerceiver(old).perceive(tiny_llava.encode_images([wide, thumbnail]), views=[wide, thumbnail])
    assert "smaller" not in (again[0].reason or "") and "smaller (22 px)" in (again[1].reason or "")

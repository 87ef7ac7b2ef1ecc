"""Perceiver-guided restoration: each correction brings a corrupted phantom measurably closer to the clean one,
clean and uncorrectable views pass unchanged, the pipeline re-encodes what it restored, and a bank leaves a
noise out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import dicom_path
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from monai_imc.data.views import model_view
from monai_imc.discriminant import LinearDiscriminant
from monai_imc.imageio import read_image
from monai_imc.noise import get_noise
from monai_imc.noise.metrics import psnr
from monai_imc.noise.preview import shrink
from monai_imc.perceive import ARTIFACT, CLEAN_VERDICT, NOT_ASSESSABLE, ArtifactPerceiver, Perception
from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import PrototypeBank, corrupt
from monai_imc.restore import CORRECTIONS, DEFAULT_CORRECTIONS, Restoration, Restorer, restore_view

#: dB a correction must win at severity 3 (about half of what it wins on its test image; docs/restore.md
#: has the gains on validation images).
MIN_GAIN = {"bias_field": 1.0, "rician": 1.0, "low_dose": 1.5, "blur": 3.0, "spike": 5.0, "jpeg": 0.2}


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    """The Shepp-Logan phantom (shipped with scikit-image), 128 px, as an 8-bit grey view."""
    image = resize(shepp_logan_phantom(), (128, 128), anti_aliasing=True)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


@pytest.fixture(scope="module")
def ct_view() -> np.ndarray:
    """A real CT slice (pydicom's CT_small), windowed as the app does, 128 px: the phantom's spectrum hides
    a spike (its own ellipses ring there), a real slice's does not."""
    image = read_image(dicom_path("CT_small.dcm"))
    small = shrink(image.array, 128)
    return model_view(type(image)(small, image.source, image.modality, image.window, image.invert))


def _perception(noise: str | None, severity: int | None, verdict: str = ARTIFACT) -> Perception:
    flagged = verdict == ARTIFACT
    return Perception(noise, severity, 0.1 if flagged else 0.9, {}, 0.9, flagged, verdict=verdict)


def test_every_correction_is_tested() -> None:
    assert set(MIN_GAIN) | {"gibbs"} == set(CORRECTIONS)
    assert set(Restorer().noises) == set(MIN_GAIN) == set(DEFAULT_CORRECTIONS)


def test_unringing_removes_ringing_at_the_acquired_resolution() -> None:
    """Gibbs ringing as Kellner's method knows it: k-space truncated at the image's own sampling (a 512 px
    object acquired on a 128 matrix); the reference is the object averaged onto that grid."""
    obj = np.full((512, 512), 0.2)
    obj[161:349, 131:383], obj[221:291, 229:283] = 0.8, 0.45
    centre = np.fft.fftshift(np.fft.fft2(obj))[192:320, 192:320] / 16.0
    acquired = np.real(np.fft.ifft2(np.fft.ifftshift(centre)))
    reference = np.rint(np.clip(obj.reshape(128, 4, 128, 4).mean(axis=(1, 3)), 0, 1) * 255).astype(np.uint8)
    ringing = np.rint(np.clip(acquired, 0, 1) * 255).astype(np.uint8)
    restored, record = restore_view(ringing, "gibbs", 3)
    assert record.applied and record.action.startswith("Gibbs unringing")
    before, after = psnr(reference, ringing), psnr(reference, restored)
    assert after > before + 0.6, f"{before:.2f} dB -> {after:.2f} dB"


@pytest.mark.parametrize("noise", sorted(MIN_GAIN))
def test_correction_moves_the_view_toward_clean(noise: str, phantom: np.ndarray, ct_view: np.ndarray) -> None:
    clean = ct_view if noise == "spike" else phantom
    noisy = get_noise(noise).apply(clean[None], severity=3, seed=1)[0]
    restored, record = restore_view(noisy, noise, 3)
    assert record.applied and record.noise == noise and record.severity == 3 and record.parameters
    assert restored.shape == noisy.shape and restored.dtype == np.uint8
    before, after = psnr(clean, noisy), psnr(clean, restored)
    assert after > before + MIN_GAIN[noise], f"{noise}: {before:.2f} dB -> {after:.2f} dB"
    assert record.summary.startswith(CORRECTIONS[noise][0])


def test_colour_and_grey_views_agree(phantom: np.ndarray) -> None:
    noisy = get_noise("rician").apply(phantom[None], severity=3, seed=1)[0]
    grey, _ = restore_view(noisy, "rician", 3)
    rgb, record = restore_view(np.repeat(noisy[..., None], 3, axis=-1), "rician", 3)
    assert rgb.shape == (128, 128, 3) and record.applied
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))


def test_clean_unknown_and_uncorrectable_views_pass_unchanged(phantom: np.ndarray) -> None:
    restorer = Restorer(enabled=True)
    for perception in (_perception(None, None, CLEAN_VERDICT), _perception(None, None, NOT_ASSESSABLE)):
        out, record = restorer.restore(phantom, perception)
        assert out is phantom and not record.applied and record.reason == perception.verdict
    out, record = restorer.restore(phantom, _perception("motion", 4))
    assert out is phantom and record == Restoration(
        False, noise="motion", severity=4, reason="no restoration for motion"
    )
    assert record.summary == "none: no restoration for motion"
    out, record = restore_view(phantom, "lesion", 3)
    assert out is phantom and not record.applied and "unknown" in record.reason
    # a spike the spectrum does not show is not notched
    out, record = restore_view(phantom, "spike", 3)
    assert out is phantom and not record.applied and "no spike found" in record.reason
    # a restorer limited to some corrections leaves the others alone
    only_nlm = Restorer(enabled=True, noises=["rician"])
    out, record = only_nlm.restore(phantom, _perception("blur", 3))
    assert out is phantom and not record.applied
    out, record = restorer.restore(phantom, _perception("gibbs", 3))  # not among the default corrections
    assert out is phantom and "not among the chosen corrections" in record.reason
    with pytest.raises(ValueError, match="no correction"):
        Restorer(noises=["motion"])
    with pytest.raises(ValueError, match="severity"):
        restore_view(phantom, "blur", 6)


def test_pipeline_restores_before_it_encodes_again(bank: PrototypeBank, tiny_llava, views) -> None:
    pipeline = IMCPipeline(tiny_llava, bank, restorer=Restorer(enabled=False))
    noisy = corrupt(views[1], "rician", 5, 3)
    features = pipeline.encode([noisy])
    perceived = _perception("rician", 5)
    done = pipeline.restore_view(noisy, features, perceived)
    assert done.restoration.applied and done.restoration.action == "non-local means"
    assert not np.array_equal(done.view, noisy)
    assert torch.equal(done.features.tokens[0], pipeline.encode([done.view]).tokens[0])
    assert done.perception == pipeline.perceive(done.features, views=[done.view])[0]
    # nothing restored: the given features and perception, no vision pass
    same = pipeline.restore_view(noisy, features, _perception("motion", 3))
    assert same.view is noisy and same.features is features and not same.restoration.applied

    off = pipeline.run(noisy, "Is it normal?", refine=False, max_new_tokens=4)  # the restorer is disabled
    assert off.restoration is None
    on = pipeline.run(noisy, "Is it normal?", refine=False, restore=True, max_new_tokens=4)
    first = pipeline.perceive(features, views=[noisy])[0]
    assert on.perception == first  # what the image carried, as received
    assert on.restoration == pipeline.restore([noisy], [first])[1][0]
    if on.restoration.applied:  # the answer came from the restored view, calibrated by what it shows
        restored = pipeline.restore([noisy], [first])[0][0]
        again = pipeline.encode([restored])
        calibrated, _ = pipeline.calibrate(again, [pipeline.perceive(again, views=[restored])[0]])
        assert torch.equal(on.features.tokens[0], calibrated.tokens[0])


def test_bank_without_a_noise(bank: PrototypeBank, tiny_llava, views) -> None:
    smaller = bank.without("blur")
    assert smaller.noises == [n for n in bank.noises if n != "blur"] and smaller.manifest["left_out"] == [
        "blur"
    ]
    assert smaller.bank_hash != bank.bank_hash and bank.noises == ["rician", "blur", "motion"]
    assert smaller.tensors["ridge_maps"].shape[0] == len(smaller.noises)
    assert smaller.tensors["strength"].shape == (len(smaller.noises), len(bank.severities))
    for name in ("fused", "tokens"):
        log_prior = smaller.tensors[f"perceiver.{name}.log_prior"]
        lda = LinearDiscriminant.from_tensors(smaller.tensors, f"perceiver.{name}")
        # one row per class, or per kind of image a class holds (a mixture): every kept class keeps its rows
        assert lda.n_classes == len(smaller.classes) and log_prior.shape[0] == lda.means.shape[0]
        if lda.owner is not None:
            before = LinearDiscriminant.from_tensors(bank.tensors, f"perceiver.{name}")
            assert before.owner is not None and sorted(set(lda.owner.tolist())) == list(range(len(smaller.classes)))
            blur_classes = torch.tensor([1 + bank.noises.index("blur") * 3 + i for i in range(3)])
            blur_rows = int(torch.isin(before.owner, blur_classes).sum())
            assert lda.means.shape[0] == before.means.shape[0] - blur_rows
        assert float(log_prior.exp().sum()) == pytest.approx(1.0)
    row = bank.noises.index("motion")
    assert torch.equal(
        smaller.tensors["strength"][smaller.noises.index("motion")], bank.tensors["strength"][row]
    )
    perceiver = ArtifactPerceiver(smaller, gate_threshold=0.0)
    blurred = [corrupt(v, "blur", 5, 0) for v in views[:4]]
    found = perceiver.perceive(tiny_llava.encode_images(blurred), views=blurred)
    assert all(p.noise in smaller.noises for p in found if p.verdict == ARTIFACT)
    with pytest.raises(ValueError, match="no noise 'gibbs'"):
        bank.without("gibbs")
    with pytest.raises(ValueError, match="only noise"):
        smaller.without("rician").without("motion")


def test_app_stage_restores_and_the_sr_says_what_was_done(bank: PrototypeBank, tiny_llava, tmp_path) -> None:
    import highdicom as hd
    import pydicom

    from monai_imc.deploy.sr_step import write_sr
    from monai_imc.deploy.work import calibrate, make_views, perceive, series_work
    from monai_imc.dicom import codes
    from monai_imc.dicom.sr import AlgorithmInfo

    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    pipeline = IMCPipeline(tiny_llava, bank, restorer=Restorer(enabled=True))
    pipeline.perceiver.gate_threshold = 0.0  # flag every view, so restoration runs
    work = perceive(make_views(series_work(ds.StudyInstanceUID, ds.SeriesInstanceUID, [ds])), pipeline)
    done = calibrate(work, pipeline)
    (item,) = done.assessed
    expected = pipeline.restore([item.view.pixels], [item.perception])[1][0]
    assert item.restoration == expected and item.perception == work.assessed[0].perception
    written = write_sr(done, tmp_path, AlgorithmInfo("tiny", "sha256:tiny-bank"))
    (group,) = hd.sr.srread(written.sr_path).content.get_image_measurement_groups()
    texts = {
        i.ConceptNameCodeSequence[0].CodeValue: i.TextValue
        for i in group[0].ContentSequence
        if i.ValueType == "TEXT"
    }
    assert texts[codes.RESTORATION.value] == expected.summary
    from monai_imc.deploy.summary import summarize_sr

    assert summarize_sr(written.sr_path).groups[0].restoration == expected.summary
    # restoration off (the bundle's default): no record, and the features are the perceived ones
    off = calibrate(work, IMCPipeline(tiny_llava, bank))
    assert off.assessed[0].restoration is None


def test_a_restorer_needs_only_its_corrections_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blur and spike need scikit-image only; the spike notch needs no extra library at all; every correction
    names what it needs."""
    from monai_imc import restore

    assert set(restore.LIBRARIES) == set(CORRECTIONS)
    asked: list[str] = []
    monkeypatch.setattr(restore, "require", lambda module, extra, purpose: asked.append(module))
    Restorer(enabled=True, noises=["spike"])
    assert asked == []
    Restorer(enabled=True, noises=["blur", "spike"])
    assert asked == ["skimage"]
    asked.clear()
    Restorer(enabled=True)
    assert set(asked) == {"skimage", "SimpleITK", "pywt"}
    asked.clear()
    Restorer(enabled=False)
    assert asked == []


def test_the_map_installs_what_the_bundles_restorer_needs() -> None:
    """The MAP's requirements (app_package/requirements.txt) hold every library of the corrections the bundle
    switches on: a packaged app must not fail at its restore step."""
    import json
    import re
    from pathlib import Path

    from monai_imc.optional import pip_name
    from monai_imc.restore import LIBRARIES

    root = Path(__file__).resolve().parents[2]
    config = json.loads((root / "bundles/monai_imc_vqa/configs/inference.json").read_text())["restore"]
    noises = config.get("noises", list(DEFAULT_CORRECTIONS)) if config.get("enabled") else []
    needed = {pip_name(m).lower() for n in noises for m in LIBRARIES[n]}
    lines = (root / "app_package/requirements.txt").read_text().splitlines()
    listed = {re.split(r"[<>=\[ ;]", line.strip(), maxsplit=1)[0].lower() for line in lines if line and not line.startswith("#")}
    assert needed <= listed, needed - listed

"""PDC maps fitted on the model's answers (``monai_imc.answer_maps``): a tiny real LLaVA, real DICOM views."""

from __future__ import annotations

import copy
import dataclasses
import json
import types
from pathlib import Path

import pytest
import torch

from monai_imc.answer_maps import AnswerQuestion, fit_answer_maps, reading_space
from monai_imc.bench.pdc_strength import with_scaled_strengths
from monai_imc.calibrate import PDCCalibrator, calibrate_tokens
from monai_imc.perceive import ArtifactPerceiver
from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import BankMismatchError, PrototypeBank, corrupt, reader_fingerprint

QUESTIONS = [("what modality is this?", "mri"), ("is this normal?", "yes"), ("which organ is shown?", "brain")]


@pytest.fixture(scope="module")
def fitted(bank: PrototypeBank, tiny_llava, views) -> PrototypeBank:
    train = [views[int(i)] for i in bank.manifest["images"]["train"]][:4]
    held = [views[int(i)] for i in bank.manifest["images"]["validation"]][:2]
    asked = [AnswerQuestion(i, q, a) for i in range(len(train)) for q, a in QUESTIONS]
    held_asked = [AnswerQuestion(i, q, a) for i in range(len(held)) for q, a in QUESTIONS]
    return fit_answer_maps(tiny_llava, bank, train, asked, held, held_asked, steps=25, batch_size=8, lr=1e-2, seed=0)


def narrow_projector(model, width: int):
    """A copy of the model's projector whose first layer is narrower than the tokens (as the bundled model's)."""
    projector = copy.deepcopy(model.projector)
    projector.linear_1 = torch.nn.Linear(projector.linear_1.in_features, width)
    projector.linear_2 = torch.nn.Linear(width, projector.linear_2.out_features)
    return types.SimpleNamespace(projector=projector)


def test_the_reading_space_is_what_the_projector_reads(tiny_llava) -> None:
    basis, lift, project = reading_space(tiny_llava)
    wide = tiny_llava.projector.linear_1
    assert wide.out_features >= wide.in_features  # the tiny model's first layer reads every direction
    assert torch.equal(basis, torch.eye(wide.in_features)) and torch.equal(lift, basis)
    narrow = narrow_projector(tiny_llava, wide.in_features // 2)
    basis, lift, project = reading_space(narrow)  # type: ignore[arg-type]
    assert basis.shape == (wide.in_features, wide.in_features // 2)
    x = torch.randn(5, basis.shape[0])
    with torch.no_grad():
        assert torch.allclose(project(x @ basis), narrow.projector(x), atol=1e-5)
    move = torch.randn(5, basis.shape[1])
    # the lift is the token change the projector reads as exactly that move
    assert torch.allclose((x + move @ lift) @ basis, x @ basis + move, atol=1e-4)


def test_fitted_maps_lower_the_answer_loss_on_held_out_images(fitted: PrototypeBank, bank: PrototypeBank) -> None:
    record = fitted.manifest["choices"]["answer_maps"]
    assert record["images"] == 4 and record["questions"] == 12 and record["validation_questions"] == 6
    losses = record["validation_loss"]
    assert set(losses) == set(bank.noises)
    gains = [v["validation_loss_before"] - v["validation_loss_after"] for v in losses.values()]
    assert sum(gains) > 0, losses  # fitted on other images, the maps must still help on the whole
    n, s = len(bank.noises), len(bank.severities)
    assert fitted.tensors["answer_maps"].shape[:2] == (n, s)
    assert torch.equal(fitted.tensors["answer_strength"], torch.ones(n, s))
    assert torch.equal(fitted.tensors["ridge_maps"], bank.tensors["ridge_maps"])  # the rest of the bank kept


def test_fitting_keeps_each_noises_best_held_out_maps(fitted: PrototypeBank) -> None:
    record = fitted.manifest["choices"]["answer_maps"]
    for noise, losses in record["validation_loss"].items():
        curve = record["validation_curve"][noise]
        assert curve[0][0] == 0 and curve[-1][0] == 25  # no map, then every 50 steps and the last (25 here)
        best_step, best_loss = min(curve, key=lambda point: point[1])
        assert losses["kept_step"] == best_step and losses["validation_loss_after"] == best_loss
        index = fitted.noises.index(noise)
        assert bool(fitted.tensors["answer_maps"][index].abs().sum() > 0) == (best_step > 0)


def test_a_fit_that_only_harms_keeps_no_map(bank: PrototypeBank, tiny_llava, views) -> None:
    """Maps fitted toward answers the held-out images contradict ("mri mri mri mri" to every training question,
    "brain brain brain brain" to the same questions held out) raise the held-out loss at every evaluated step:
    the zero maps (no calibration) are kept instead of the last step's."""
    train, held = views[:2], views[2:4]
    asked = [AnswerQuestion(i, q, "mri mri mri mri") for i in range(2) for q, _ in QUESTIONS]
    contradicted = [AnswerQuestion(i, q, "brain brain brain brain") for i in range(2) for q, _ in QUESTIONS]
    wrecked = fit_answer_maps(tiny_llava, bank, train, asked, held, contradicted, steps=8, batch_size=6, lr=0.1,
                              seed=0, eval_every=4)
    record = wrecked.manifest["choices"]["answer_maps"]
    assert all(v["kept_step"] == 0 for v in record["validation_loss"].values()), record["validation_loss"]
    assert all(curve[-1][1] > curve[0][1] for curve in record["validation_curve"].values())
    assert not bool(wrecked.tensors["answer_maps"].abs().sum() > 0)
    last = fit_answer_maps(tiny_llava, bank, train, asked, held, contradicted, steps=8, batch_size=6, lr=0.1, seed=0,
                           eval_every=0)  # the last step's maps, as asked
    assert bool(last.tensors["answer_maps"].abs().sum() > 0)


def test_only_the_levels_the_bank_calibrates_are_fitted(bank: PrototypeBank, tiny_llava, views, tmp_path: Path) -> None:
    asked = [AnswerQuestion(i, q, a) for i in range(2) for q, a in QUESTIONS]
    floor = max(bank.severities)
    floored = PrototypeBank(bank.noises, bank.severities, dict(bank.tensors), {**bank.manifest, "choices": {
        **bank.manifest.get("choices", {}), "answer_strength_from_level": floor}})
    assert floored.calibrates_from("answer") == floor
    calls = []
    encode = tiny_llava.encode_images
    tiny_llava.encode_images = lambda images: calls.append(len(images)) or encode(images)
    cache = tmp_path / "tokens.pt"
    try:
        top = fit_answer_maps(tiny_llava, floored, views[:2], asked, steps=3, batch_size=4, seed=0, token_cache=cache)
        encoded = sum(calls)
        assert encoded == 2 * (1 + len(bank.noises)) + 1  # clean + each noise at the one level; one placeholder view
        again = fit_answer_maps(tiny_llava, floored, views[:2], asked, steps=3, batch_size=4, seed=0, token_cache=cache)
        assert sum(calls) == encoded  # the cached tokens, nothing encoded again
        assert torch.equal(again.tensors["answer_maps"], top.tensors["answer_maps"])
        fit_answer_maps(tiny_llava, floored, views[:2], asked, steps=1, batch_size=4, seed=1, token_cache=cache)
        assert sum(calls) > encoded  # another seed makes other noisy copies: encoded again
    finally:
        tiny_llava.encode_images = encode
    maps = top.tensors["answer_maps"]
    at = bank.severities.index(floor)
    assert top.manifest["choices"]["answer_maps"]["levels"] == [floor]
    assert bool(maps[:, at].abs().sum() > 0)
    assert not bool(torch.cat([maps[:, :at], maps[:, at + 1:]], dim=1).abs().sum() > 0)
    with pytest.raises(ValueError, match="levels \\[9\\] to fit"):
        fit_answer_maps(tiny_llava, bank, views[:2], asked, steps=1, levels=[9])


def test_answer_maps_refuse_a_model_that_reads_the_tokens_otherwise(fitted: PrototypeBank, bank: PrototypeBank,
                                                                    tiny_llava) -> None:
    assert fitted.manifest["choices"]["answer_maps"]["reader_sha256"] == reader_fingerprint(tiny_llava)
    fitted.check_model(tiny_llava)  # the model they were fitted on
    fitted_on = reader_fingerprint(tiny_llava)
    weight = tiny_llava.projector.linear_1.weight
    kept = weight.detach().clone()
    try:
        with torch.no_grad():  # the same tower, its projector trained further (restored below)
            weight.mul_(1.01)
        assert reader_fingerprint(tiny_llava) != fitted_on
        with pytest.raises(BankMismatchError, match="answer-fitted maps were fitted on another projector"):
            fitted.check_model(tiny_llava)
        with pytest.raises(BankMismatchError, match="fit-answers"):
            IMCPipeline(tiny_llava, fitted, variant="auto")
        bank.check_model(tiny_llava)  # the tower's own maps and perceiver still serve it
        assert IMCPipeline(tiny_llava, bank, variant="auto").variant == "ridge"
    finally:
        with torch.no_grad():
            weight.copy_(kept)
    fitted.check_model(tiny_llava)


def test_answer_variant_calibrates_flagged_images_and_passes_clean_ones(fitted: PrototypeBank, tiny_llava, views) -> None:
    noisy = tiny_llava.encode_images([corrupt(views[0], "rician", 5, 7)])
    flagged = ArtifactPerceiver(fitted, gate_threshold=0.0).perceive(noisy)
    out, records = PDCCalibrator(fitted, variant="answer").calibrate(noisy, flagged)
    assert records[0].applied and records[0].variant == "answer"
    assert not torch.equal(out.tokens[0], noisy.tokens[0])
    expected = calibrate_tokens(fitted, noisy.tokens[0], flagged[0].noise, flagged[0].severity,
                                records[0].strength, "answer")
    assert torch.allclose(out.tokens[0], expected)
    clean = tiny_llava.encode_images([views[0]])
    passed, kept = PDCCalibrator(fitted, variant="answer").calibrate(
        clean, ArtifactPerceiver(fitted, gate_threshold=1.01).perceive(clean))
    assert passed is clean and not kept[0].applied
    # the answer variant's strengths are its own: scaling them to 0 turns it off and leaves ridge's alone
    off = with_scaled_strengths(fitted, dict.fromkeys(fitted.noises, 0.0), {"why": "test"}, "answer")
    assert torch.equal(off.tensors["strength"], fitted.tensors["strength"])
    _, records = PDCCalibrator(off, variant="answer").calibrate(noisy, flagged)
    assert not records[0].applied and records[0].reason == "strength 0 on validation"


def test_a_bank_without_fitted_maps_refuses_the_answer_variant(bank: PrototypeBank, fitted: PrototypeBank,
                                                                tiny_llava) -> None:
    with pytest.raises(ValueError, match="fit-answers"):
        PDCCalibrator(bank, variant="answer")
    # "auto" (the bundle's): the fitted maps where the bank has them, else ridge, so a swapped-in bank works
    assert PDCCalibrator(fitted, variant="auto").variant == "answer"
    assert PDCCalibrator(bank, variant="auto").variant == "ridge"
    assert IMCPipeline(tiny_llava, fitted, variant="auto").variant == "answer"
    assert IMCPipeline(tiny_llava, bank, variant="auto").variant == "ridge"
    smaller = fitted.without("blur")
    assert smaller.tensors["answer_maps"].shape[0] == len(fitted.noises) - 1
    assert torch.equal(smaller.tensors["answer_maps"][0], fitted.tensors["answer_maps"][0])


def test_fitting_refuses_questions_about_images_not_given(bank: PrototypeBank, tiny_llava, views) -> None:
    with pytest.raises(ValueError, match="names image 3, but 1 images"):
        fit_answer_maps(tiny_llava, bank, views[:1], [AnswerQuestion(3, "q?", "a")], steps=1)
    with pytest.raises(ValueError, match="training questions"):
        fit_answer_maps(tiny_llava, bank, views[:1], [], steps=1)
    no_projector = dataclasses.make_dataclass("NoProjector", [])()
    with pytest.raises(ValueError, match="LLaVA projector"):
        reading_space(no_projector)  # type: ignore[arg-type]


def test_the_bundled_banks_images_are_asked_their_training_questions() -> None:
    """The bundled bank's image lists matched to SLAKE / VQA-RAD train rows (real data; no model loaded)."""
    from helpers import REPO, require_data

    from monai_imc.answer_maps import bank_questions
    from monai_imc.data import load_dataset

    data = require_data()
    manifest = json.loads((REPO / "bundles/monai_imc_vqa/models/prototype-bank/manifest.json").read_text())
    listed = {k: [str(data / Path(f).relative_to("../shared/data")) for f in v] for k, v in manifest["images"].items()}
    few = PrototypeBank([], [], {}, {"images": {"train": listed["train"][:3], "validation": listed["validation"][:2]}})
    specs = [f"slake:{data / 'slake'}", f"vqa-rad:{data / 'vqa_rad'}"]
    (views, questions), (held_views, held_questions) = bank_questions(few, specs, size=64)
    assert len(views) == 3 and len(held_views) == 2
    assert all(max(v.shape[:2]) <= 64 for v in (*views, *held_views))
    rows = [r for spec in specs for r in load_dataset(spec, "train")]
    first = Path(listed["train"][0]).resolve()
    expected = sorted((r.question, r.answer) for r in rows if Path(r.image).resolve() == first)
    assert expected and sorted((q.question, q.answer) for q in questions if q.image == 0) == expected
    assert {q.image for q in held_questions} == {0, 1}
    assert manifest["choices"]["answer_maps"]["questions"] > 1000  # the bundle's maps were fitted on such questions


def test_fit_answers_command_end_to_end(tmp_path: Path, views, capsys: pytest.CaptureFixture[str]) -> None:
    """``monai-imc prototypes build`` then ``fit-answers`` on real DICOM views saved as PNGs and a JSONL of
    questions about them (a site's own data), with a tiny LLaVA checkpoint built here."""
    from PIL import Image

    from monai_imc import cli
    from monai_imc.models.tiny import build_tiny_checkpoint

    model = build_tiny_checkpoint("llava", tmp_path / "llava", seed=0)
    folder = tmp_path / "images"
    folder.mkdir()
    lines = []
    for i, view in enumerate(views[:8]):
        Image.fromarray(view).save(folder / f"view{i}.png")
        lines += [json.dumps({"image": f"images/view{i}.png", "question": q, "answer": a}) for q, a in QUESTIONS]
    (tmp_path / "qa.jsonl").write_text("\n".join(lines) + "\n")
    bank = tmp_path / "bank"
    assert cli.main(["prototypes", "build", "--model", str(model), "--images", str(folder), "--noises", "blur,rician",
                     "--severities", "3,5", "--out", str(bank)]) == 0
    out = tmp_path / "fitted"
    argv = ["prototypes", "fit-answers", "--model", str(model), "--bank", str(bank), "--data", f"jsonl:{tmp_path / 'qa.jsonl'}",
            "--size", "0", "--steps", "3", "--batch-size", "4", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "fitting on 18 questions about 6 images; 6 questions about 2 validation images" in printed
    fitted = PrototypeBank.load(out)
    assert fitted.tensors["answer_maps"].shape[:2] == (2, 2)
    assert fitted.manifest["choices"]["answer_maps"]["steps_per_noise"] == 3
    (tmp_path / "other.jsonl").write_text(json.dumps({"image": "elsewhere.png", "question": "q?", "answer": "a"}) + "\n")
    argv[argv.index(f"jsonl:{tmp_path / 'qa.jsonl'}")] = f"jsonl:{tmp_path / 'other.jsonl'}"
    assert cli.main(argv) == 2
    assert "none of the bank's training images has a training question" in capsys.readouterr().err


def test_fitting_a_bfloat16_model_keeps_float32_maps(bank: PrototypeBank, views, tmp_path: Path) -> None:
    """The dtype a GPU runs a 7B model in: the maps are fitted in float32 and cast where the model reads them."""
    from monai_imc.models import load_model
    from monai_imc.models.tiny import build_tiny_checkpoint

    model = load_model(str(build_tiny_checkpoint("llava", tmp_path / "llava", seed=0)), device="cpu", dtype="bfloat16")
    asked = [AnswerQuestion(i, q, a) for i in range(2) for q, a in QUESTIONS]
    fitted = fit_answer_maps(model, bank, views[:2], asked, steps=3, batch_size=4, seed=0)
    maps = fitted.tensors["answer_maps"]
    assert maps.dtype == torch.float32 and bool(maps.abs().sum() > 0)
    noisy = model.encode_images([corrupt(views[0], "blur", 5, 3)])
    moved = calibrate_tokens(fitted, noisy.tokens[0], "blur", 5, 1.0, "answer")
    assert moved.dtype == torch.bfloat16 and not torch.equal(moved, noisy.tokens[0])

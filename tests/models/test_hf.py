"""The VisionLanguageModel contract, checked on a tiny real model of every supported family."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from monai_imc.models import (
    SUPPORTED_FAMILIES,
    HFVisionLanguageModel,
    VisionFeatures,
    VisionLanguageModel,
    load_model,
)

QUESTION = "Is there a nodule in the left lung?"
GEN = {"max_new_tokens": 8}


def family_inputs(model: HFVisionLanguageModel, images: list, prompt_text: str) -> dict[str, torch.Tensor]:
    """The family's own preprocessing of (images, prompt): what a user hands to ``model.generate``.

    LLaVA and Gemma 3 use their HF processor. The Qwen-VL processors cannot be built without a video
    processor (torchvision), so their steps are spelled out here as ``Qwen2VLProcessor.__call__`` does
    them: image processor, one ``<|image_pad|>`` per merged patch, tokenizer, token types.
    """
    if model.family == "gemma3":
        return dict(model.processor(images=[images], text=[prompt_text], return_tensors="pt"))
    if model.family == "llava":
        return dict(model.processor(images=images, text=[prompt_text], return_tensors="pt"))
    pixels = model.image_processor(images=images, return_tensors="pt")
    merge = model.image_processor.merge_size**2
    text = prompt_text
    for grid in pixels["image_grid_thw"]:
        text = text.replace("<|image_pad|>", "<|placeholder|>" * int(grid.prod() // merge), 1)
    text = text.replace("<|placeholder|>", "<|image_pad|>")
    enc = model.tokenizer([text], return_tensors="pt")
    image_id = model.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "mm_token_type_ids": (enc["input_ids"] == image_id).long(),
        "pixel_values": pixels["pixel_values"],
        "image_grid_thw": pixels["image_grid_thw"],
    }


def reference_ids(model: HFVisionLanguageModel, images: list, question: str) -> torch.Tensor:
    """Greedy new tokens of the family's own ``generate`` from pixels (the vision tower runs inside)."""
    inputs = family_inputs(model, images, model.build_prompt(question, len(images)))
    with torch.no_grad():
        out = model.model.generate(
            **inputs, do_sample=False, pad_token_id=model.tokenizer.pad_token_id, **GEN
        )
    return out[0, inputs["input_ids"].shape[1] :]


# ---------------------------------------------------------------------------------------------- loading


def test_load_model_picks_the_family_adapter(tiny_model: HFVisionLanguageModel, family: str) -> None:
    assert type(tiny_model) is SUPPORTED_FAMILIES[family]
    assert isinstance(tiny_model, VisionLanguageModel)
    assert tiny_model.family == family
    assert tiny_model.device.type == "cpu"
    assert tiny_model.model.dtype == torch.float32  # float32 on CPU by default
    assert not tiny_model.model.training


def test_load_model_dtype_override(tiny_root) -> None:
    model = load_model(str(tiny_root / "llava"), device="cpu", dtype="bfloat16")
    assert model.model.dtype == torch.bfloat16
    features = model.encode_images(np.zeros((40, 40, 3), np.uint8))
    assert features.tokens[0].dtype == torch.bfloat16
    assert isinstance(model.generate(features, QUESTION, max_new_tokens=2), str)


def test_unsupported_family_is_refused(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="'bert'"):
        load_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava_mistral"}))
    with pytest.raises(ValueError, match="llava_mistral.*convert"):
        load_model(str(tmp_path))


def test_bad_dtype_is_refused(tiny_root) -> None:
    with pytest.raises(ValueError, match="int8"):
        load_model(str(tiny_root / "llava"), device="cpu", dtype="int8")


# ---------------------------------------------------------------------------------------------- encode


def test_encode_returns_projector_input(tiny_model: HFVisionLanguageModel, images) -> None:
    features = tiny_model.encode_images(images)
    assert features.family == tiny_model.family
    assert features.num_images == 2
    assert features.image_sizes == ((48, 64), (64, 32))
    for i, tokens in enumerate(features.tokens):
        assert tokens.ndim == 2
        assert tuple(tokens.shape) == tiny_model._expected_token_shape(features, i)
        torch.testing.assert_close(features.pooled[i], tokens.float().mean(0))
    assert features.pooled.shape == (2, features.tokens[0].shape[1])
    # the placeholders hold as many image tokens as the projector makes rows
    projected = tiny_model._project(features)
    rows = [p.shape[-2] for p in projected]
    assert tuple(rows) == features.num_image_tokens
    if tiny_model.family.startswith("qwen"):
        assert features.image_grid_thw is not None and features.image_grid_thw.shape == (2, 3)
        assert features.tokens[0].shape[0] != features.tokens[1].shape[0]  # sizes differ, counts too


def test_encode_matches_the_familys_projector_input(tiny_model: HFVisionLanguageModel, images) -> None:
    """Projecting our tokens gives exactly what the family's ``get_image_features`` returns."""
    features = tiny_model.encode_images(images)
    inputs = family_inputs(tiny_model, images, tiny_model.build_prompt(QUESTION, 2))
    kwargs = {"pixel_values": inputs["pixel_values"]}
    if "image_grid_thw" in inputs:
        kwargs["image_grid_thw"] = inputs["image_grid_thw"]
    with torch.no_grad():
        theirs = tiny_model.model.model.get_image_features(**kwargs).pooler_output
        ours = tiny_model._project(features)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_batch_of_different_sizes_equals_one_by_one(tiny_model: HFVisionLanguageModel, images) -> None:
    batch = tiny_model.encode_images(images)
    for i, image in enumerate(images):
        alone = tiny_model.encode_images(image)
        torch.testing.assert_close(batch.tokens[i], alone.tokens[0], rtol=1e-4, atol=1e-5)
        assert batch.placeholders[i] == alone.placeholders[0]


def test_numpy_and_grayscale_inputs(tiny_model: HFVisionLanguageModel, images) -> None:
    arrays = [np.asarray(im) for im in images]
    from_pil = tiny_model.encode_images(images)
    from_numpy = tiny_model.encode_images(arrays)
    for a, b in zip(from_pil.tokens, from_numpy.tokens):
        torch.testing.assert_close(a, b)
    gray = np.asarray(images[0].convert("L"))
    features = tiny_model.encode_images([gray, gray[..., None]])
    torch.testing.assert_close(features.tokens[0], features.tokens[1])


# ---------------------------------------------------------------------------------------------- generate


def test_one_vision_pass_per_image(tiny_model: HFVisionLanguageModel, images, count_vision) -> None:
    with count_vision(tiny_model) as counter:
        features = tiny_model.encode_images(images)
        assert (counter.calls, counter.images) == (1, 2)
        tiny_model.generate(features, QUESTION, **GEN)
        calibrated = features.with_tokens([t * 0.5 + 0.1 for t in features.tokens])
        tiny_model.generate(calibrated, QUESTION, **GEN)
    assert (counter.calls, counter.images) == (1, 2)


@pytest.mark.parametrize("n_images", [1, 2])
def test_generate_equals_the_familys_generate(tiny_model: HFVisionLanguageModel, images, n_images) -> None:
    subset = images[:n_images]
    ours = tiny_model.generate_ids(tiny_model.encode_images(subset), QUESTION, **GEN)
    theirs = reference_ids(tiny_model, subset, QUESTION)
    assert ours.tolist() == theirs.tolist()
    text = tiny_model.generate(tiny_model.encode_images(subset), QUESTION, **GEN)
    assert text == tiny_model.tokenizer.decode(theirs, skip_special_tokens=True).strip()


def test_generate_accepts_a_prompt_with_placeholders(tiny_model: HFVisionLanguageModel, images) -> None:
    features = tiny_model.encode_images(images[:1])
    full = tiny_model.build_prompt(QUESTION, 1)
    assert (
        tiny_model.generate_ids(features, full, **GEN).tolist()
        == tiny_model.generate_ids(features, QUESTION, **GEN).tolist()
    )
    with pytest.raises(ValueError, match="2 images"):
        tiny_model.generate(tiny_model.encode_images(images), full, **GEN)


def test_changed_features_change_the_answer(
    tiny_model: HFVisionLanguageModel, images, make_images, count_vision
) -> None:
    features = tiny_model.encode_images(images[:1])
    base = tiny_model.generate_ids(features, QUESTION, **GEN).tolist()
    generator = torch.Generator().manual_seed(0)
    changed = features.with_tokens(
        [-t + 3.0 * torch.randn(t.shape, generator=generator) for t in features.tokens]
    )
    assert not torch.allclose(changed.pooled, features.pooled)
    with count_vision(tiny_model) as counter:
        moved = tiny_model.generate_ids(changed, QUESTION, **GEN).tolist()
    assert counter.calls == 0  # no second vision pass for modified features
    assert moved != base
    # the features really drive the answer: another image's features give that image's answer
    other = make_images(7)[:1]
    assert tiny_model.generate_ids(tiny_model.encode_images(other), QUESTION, **GEN).tolist() == (
        reference_ids(tiny_model, other, QUESTION).tolist()
    )


# ---------------------------------------------------------------------------------------------- scores, chat


@pytest.mark.parametrize(
    ("context", "text"), [("The CT shows", " a left lung nodule."), ("", "Answer: yes.")]
)
def test_log_likelihood_equals_manual_sum(tiny_model: HFVisionLanguageModel, context, text) -> None:
    tok = tiny_model.tokenizer
    full = tok(context + text, return_tensors="pt")["input_ids"]
    n_context = len(tok(context)["input_ids"]) if context else len(tok("")["input_ids"])
    assert full[0, :n_context].tolist() == tok(context)["input_ids"][:n_context]
    with torch.no_grad():
        logits = tiny_model.model(input_ids=full).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    start = max(n_context, 1)  # the first token of a sequence has no prediction
    manual = sum(float(logp[j - 1, full[0, j]]) for j in range(start, full.shape[1]))
    score = tiny_model.log_likelihood(text, context)
    assert score == pytest.approx(manual, abs=1e-5)
    assert score < 0


def test_log_likelihood_prefers_the_context(tiny_model: HFVisionLanguageModel) -> None:
    """Scores are conditional: the same text scores differently after different contexts."""
    a = tiny_model.log_likelihood(" nodule.", "The CT shows a left lung")
    b = tiny_model.log_likelihood(" nodule.", "Answer:")
    assert a != pytest.approx(b)
    with pytest.raises(ValueError, match="empty"):
        tiny_model.log_likelihood("", "context")


def test_chat_is_a_deterministic_text_turn(tiny_model: HFVisionLanguageModel, count_vision) -> None:
    messages = [
        {"role": "system", "content": "You repair radiology text."},
        {"role": "user", "content": "Fix: the lugn shows a nodlue."},
    ]
    with count_vision(tiny_model) as counter:
        first = tiny_model.chat(messages, max_new_tokens=6)
        second = tiny_model.chat(messages, max_new_tokens=6)
    assert counter.calls == 0
    assert isinstance(first, str) and first == second
    text = tiny_model.render_chat(messages)
    enc = tiny_model.text_inputs(text, ())
    with torch.no_grad():
        out = tiny_model.model.generate(
            **enc, max_new_tokens=6, do_sample=False, pad_token_id=tiny_model.tokenizer.pad_token_id
        )
    assert (
        first
        == tiny_model.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    )
    with pytest.raises(ValueError, match="empty"):
        tiny_model.chat([])
    with pytest.raises(ValueError, match="role"):
        tiny_model.chat([{"content": "hi"}])


# ---------------------------------------------------------------------------------------------- errors


def test_rejected_image_is_named(tiny_model: HFVisionLanguageModel, images) -> None:
    bad = np.zeros((20, 20, 2), np.uint8)  # two channels: no processor can read it
    with pytest.raises(ValueError, match=r"images\[1\].*\(20, 20, 2\)"):
        tiny_model.encode_images([images[0], bad])
    with pytest.raises(ValueError, match=r"images\[0\].*\(2, 8, 8, 3\)"):
        tiny_model.encode_images([np.zeros((2, 8, 8, 3), np.uint8)])
    with pytest.raises(TypeError, match=r"images\[1\] has type str"):
        tiny_model.encode_images([images[0], "scan.png"])
    with pytest.raises(TypeError, match="int"):
        tiny_model.encode_images(3)
    with pytest.raises(ValueError, match="empty"):
        tiny_model.encode_images([])


def test_features_that_do_not_fit_are_refused(tiny_model: HFVisionLanguageModel, tiny_models, images) -> None:
    features = tiny_model.encode_images(images)
    short = dataclasses.replace(features, tokens=(features.tokens[0][:-1], features.tokens[1]))
    expected = tuple(features.tokens[0].shape)
    with pytest.raises(ValueError, match=rf"tokens\[0\] has shape \({expected[0] - 1}, {expected[1]}\)"):
        tiny_model.generate(short, QUESTION)
    wide = dataclasses.replace(features, tokens=tuple(torch.cat([t, t], dim=-1) for t in features.tokens))
    with pytest.raises(ValueError, match=f"expects {expected}".replace("(", r"\(").replace(")", r"\)")):
        tiny_model.generate(wide, QUESTION)
    other = next(f for f in tiny_models if f != tiny_model.family)
    foreign = tiny_models[other].encode_images(images)
    with pytest.raises(ValueError, match=f"{other!r}"):
        tiny_model.generate(foreign, QUESTION)
    with pytest.raises(TypeError, match="VisionFeatures"):
        tiny_model.generate(features.tokens, QUESTION)


# ---------------------------------------------------------------------------------------------- dataclass


def test_vision_features_with_tokens_checks_shapes(tiny_models, images) -> None:
    features = tiny_models["llava"].encode_images(images)
    with pytest.raises(ValueError, match="2 images"):
        features.with_tokens(features.tokens[:1])
    with pytest.raises(ValueError, match=r"tokens\[1\] has shape"):
        features.with_tokens([features.tokens[0], features.tokens[1][:3]])
    with pytest.raises(dataclasses.FrozenInstanceError):
        features.tokens = ()  # type: ignore[misc]
    with pytest.raises(ValueError, match="disagree"):
        VisionFeatures(
            tokens=features.tokens,
            pooled=features.pooled[:1],
            family="llava",
            num_image_tokens=features.num_image_tokens,
            placeholders=features.placeholders,
        )
    kept = features.with_tokens(features.tokens, recompute_pooled=False)
    assert kept.pooled is features.pooled


def test_features_move_between_devices(tiny_models, images) -> None:
    model = tiny_models["qwen2_vl"]
    features = model.encode_images(images)
    moved = features.to("cpu")
    assert moved.tokens[0].device.type == "cpu" and moved.image_grid_thw is not None
    assert (
        model.generate_ids(moved, QUESTION, **GEN).tolist()
        == model.generate_ids(features, QUESTION, **GEN).tolist()
    )


def test_shared_model_across_threads(tiny_models, images) -> None:
    """Operators share one model; concurrent encode and generate must not mix their projector calls."""
    import threading

    model = tiny_models["llava"]
    features = model.encode_images(images)
    expected_tokens = features.tokens
    expected_ids = model.generate_ids(features, QUESTION, max_new_tokens=4).tolist()
    errors: list[BaseException] = []

    def encode() -> None:
        try:
            for _ in range(3):
                got = model.encode_images(images)
                for a, b in zip(got.tokens, expected_tokens):
                    torch.testing.assert_close(a, b)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def generate() -> None:
        try:
            for _ in range(3):
                assert model.generate_ids(features, QUESTION, max_new_tokens=4).tolist() == expected_ids
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=encode), threading.Thread(target=generate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_prompt_without_chat_template(tiny_models, images) -> None:
    import copy

    model = copy.copy(tiny_models["llava"])
    model.chat_template = None
    prompt = model.build_prompt(QUESTION, 2)
    assert prompt == f"user: <image>\n<image>\n{QUESTION}\nassistant:"
    features = model.encode_images(images)
    assert isinstance(model.generate(features, QUESTION, max_new_tokens=3), str)
    assert isinstance(model.chat([{"role": "user", "content": "hello"}], max_new_tokens=3), str)


def test_unreadable_checkpoint_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="no-such-checkpoint"):
        load_model(str(tmp_path / "no-such-checkpoint"))

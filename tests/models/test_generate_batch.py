"""Batched generation: the same answers as one by one, with the decoder's probability of each."""

from __future__ import annotations

import math

import pytest
import torch

from monai_imc.models import HFVisionLanguageModel

GEN = {"max_new_tokens": 6}
PROMPTS = ["What is shown?", "Is there an abnormality in the left lung of this image?", "Which organ?"]


def test_batch_equals_one_by_one(tiny_model: HFVisionLanguageModel, images) -> None:
    features = [tiny_model.encode_images(images[0]), tiny_model.encode_images(images[1]),
                tiny_model.encode_images(images[0])]
    batched = tiny_model.generate_batch(features, PROMPTS, **GEN)
    single = [tiny_model.generate(f, p, **GEN) for f, p in zip(features, PROMPTS)]
    assert [g.text for g in batched] == single
    assert all(0.0 < g.probability <= 1.0 for g in batched)


def test_probability_is_the_product_of_token_probabilities(tiny_models, images) -> None:
    model = tiny_models["llava"]
    features = model.encode_images(images[0])
    (generation,) = model.generate_batch([features], [PROMPTS[0]], **GEN)
    ids = model.generate_ids(features, PROMPTS[0], **GEN)
    inputs = model.text_inputs(model.build_prompt(PROMPTS[0], 1), features.placeholders)
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    full = torch.cat([inputs["input_ids"], ids[None]], dim=1)
    with torch.no_grad():
        logits = model.model(input_ids=full, attention_mask=torch.ones_like(full), mm_encoder_outputs={
            "image": BaseModelOutputWithPooling(pooler_output=model._project(features))}).logits
    start = inputs["input_ids"].shape[1]
    logp = torch.log_softmax(logits[0, start - 1:-1].float(), dim=-1).gather(-1, ids[:, None])[:, 0]
    eos = model.model.generation_config.eos_token_id
    stop = next((i + 1 for i, t in enumerate(ids.tolist()) if t == eos), len(ids))
    assert generation.probability == pytest.approx(math.exp(float(logp[:stop].sum())), rel=1e-4)


def test_batch_checks_its_arguments(tiny_models, images) -> None:
    model = tiny_models["llava"]
    assert model.generate_batch([], []) == []
    with pytest.raises(ValueError, match="1 features for 2 prompts"):
        model.generate_batch([model.encode_images(images[0])], PROMPTS[:2])


def test_chat_batch_equals_one_by_one(tiny_model: HFVisionLanguageModel) -> None:
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    assert tiny_model.chat_batch(conversations, **GEN) == [tiny_model.chat(c, **GEN) for c in conversations]
    assert tiny_model.chat_batch([]) == []

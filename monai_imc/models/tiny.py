"""Tiny, randomly initialised checkpoints of every supported family, built locally.

These checkpoints are real HF transformers models (the same classes as LLaVA-Med, Lingshu or MedGemma),
only a few layers deep and a few dozen units wide, with a byte-level BPE tokenizer trained on a few
hundred synthetic sentences and the family's own image processor and processor. They are written with
``save_pretrained`` so that they load through exactly the path a real checkpoint uses
(:func:`monai_imc.models.load_model`). Nothing is downloaded.

They exist for tests and benchmarks of the code paths (shapes, splicing, generation, scoring); their
answers are meaningless.

Example:
    >>> from monai_imc.models import load_model
    >>> from monai_imc.models.tiny import build_tiny_checkpoint
    >>> path = build_tiny_checkpoint("qwen2_vl", "/tmp/tiny-qwen2-vl")  # doctest: +SKIP
    >>> model = load_model(path)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import torch

from monai_imc.models.tokenizer import (
    GEMMA_CHAT_TEMPLATE,
    LLAVA_CHAT_TEMPLATE,
    QWEN_CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    train_tokenizer,
)

logger = logging.getLogger(__name__)

__all__ = ["TINY_FAMILIES", "build_tiny_checkpoint", "llava_processor", "synthetic_corpus"]

#: The families :func:`build_tiny_checkpoint` can build (the ``model_type`` of their config).
TINY_FAMILIES: tuple[str, ...] = ("llava", "qwen2_vl", "qwen2_5_vl", "gemma3")

_HIDDEN = 32
_VOCAB = 320
# Wider than the usual 0.02, so that a 2-layer random language model attends to (and answers from) its
# image tokens instead of echoing the last text token.
_INIT_STD = 0.2

def synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Synthetic radiology-flavoured sentences used to train the tiny tokenizers.

    Args:
        n: number of sentences.
        seed: seed of the sentence sampler.

    Returns:
        The sentences.
    """
    rng = random.Random(seed)
    organs = ["lung", "liver", "heart", "kidney", "brain", "spleen", "chest", "abdomen", "pelvis", "spine"]
    findings = ["nodule", "effusion", "mass", "fracture", "opacity", "lesion", "edema", "cyst", "hemorrhage"]
    sides = ["left", "right", "bilateral", "no"]
    modalities = ["CT", "MRI", "X-ray", "ultrasound", "PET"]
    verbs = ["shows", "reveals", "suggests", "excludes", "demonstrates"]
    questions = ["Is there", "Where is the", "What is the", "How large is the", "Which side has the"]
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            out.append(
                f"The {rng.choice(modalities)} {rng.choice(verbs)} a {rng.choice(sides)} "
                f"{rng.choice(organs)} {rng.choice(findings)} of {rng.randint(1, 99)} mm."
            )
        elif kind < 0.8:
            out.append(f"{rng.choice(questions)} {rng.choice(findings)} in the {rng.choice(organs)}?")
        else:
            out.append(f"Answer: {rng.choice(['yes', 'no', rng.choice(sides), rng.choice(organs)])}.")
    return out


def _train_tokenizer(family: str, seed: int):
    """The tiny checkpoints' tokenizer: :func:`~monai_imc.models.tokenizer.train_tokenizer` on
    :func:`synthetic_corpus` (``seed``) with the tiny vocabulary."""
    return train_tokenizer(family, synthetic_corpus(seed=seed), vocab_size=_VOCAB, seed=seed)


def _llava(tokenizer):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=_HIDDEN,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    return model, llava_processor(tokenizer, image_size=32, patch_size=8)


def llava_processor(tokenizer, image_size: int, patch_size: int):
    """A ``LlavaProcessor`` (CLIP image processor, ``tokenizer``, the LLaVA chat template) for a CLIP tower.

    Args:
        tokenizer: the LLaVA tokenizer (with an ``<image>`` token).
        image_size: the tower's input size in pixels (shortest-edge resize, then centre crop).
        patch_size: the tower's patch size.

    Returns:
        The processor; one image becomes ``(image_size // patch_size) ** 2`` image tokens.
    """
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )


def _qwen(tokenizer, family: str):
    from transformers import Qwen2VLImageProcessor

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS["qwen"]}
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": _HIDDEN,
        "intermediate_size": 2 * _HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 512,
        "initializer_range": _INIT_STD,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": ids["<|endoftext|>"],
    }
    common = {
        "text_config": text,
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "initializer_range": _INIT_STD,
    }
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        vision = {
            "depth": 2,
            "embed_dim": _HIDDEN,
            "hidden_size": _HIDDEN,
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }
        model = Qwen2VLForConditionalGeneration(Qwen2VLConfig(vision_config=vision, **common))
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        vision = {
            "depth": 2,
            "hidden_size": _HIDDEN,
            "out_hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_heads": 2,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 32,
            "fullatt_block_indexes": [1],
        }
        model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(vision_config=vision, **common))
    image_processor = Qwen2VLImageProcessor(
        patch_size=8, merge_size=2, temporal_patch_size=2, min_pixels=16 * 16, max_pixels=64 * 64
    )
    # The Qwen processors insist on a video processor (torchvision); like the real checkpoints, the tiny one
    # ships its image processor, tokenizer and chat template as separate files instead.
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return model, (image_processor, tokenizer)


def _gemma3(tokenizer):
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    vision = SiglipVisionConfig(
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        vision_use_head=False,
    )
    text = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=64,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512,
        initializer_range=_INIT_STD,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        boi_token_index=tokenizer.convert_tokens_to_ids("<start_of_image>"),
        eoi_token_index=tokenizer.convert_tokens_to_ids("<end_of_image>"),
        image_token_index=tokenizer.convert_tokens_to_ids("<image_soft_token>"),
        initializer_range=_INIT_STD,
    )
    model = Gemma3ForConditionalGeneration(config)
    image_processor = Gemma3ImageProcessor(size={"height": 32, "width": 32})
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=GEMMA_CHAT_TEMPLATE,
        image_seq_length=4,
    )
    return model, processor


def build_tiny_checkpoint(family: str, path: str | Path, seed: int = 0) -> Path:
    """Build a tiny random checkpoint of ``family`` and save it (model, processor, tokenizer) to ``path``.

    Args:
        family: one of :data:`TINY_FAMILIES` (``"llava"``, ``"qwen2_vl"``, ``"qwen2_5_vl"``, ``"gemma3"``).
        path: the directory to write; created if missing.
        seed: seed of the weights and of the tokenizer corpus, so a build is reproducible.

    Returns:
        The directory, ready for :func:`monai_imc.models.load_model`.

    Raises:
        ValueError: if ``family`` is not one of :data:`TINY_FAMILIES`.
    """
    if family not in TINY_FAMILIES:
        raise ValueError(f"Unknown tiny family {family!r}; expected one of {TINY_FAMILIES}.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(family, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if family == "llava":
            model, processor = _llava(tokenizer)
        elif family == "gemma3":
            model, processor = _gemma3(tokenizer)
        else:
            model, processor = _qwen(tokenizer, family)
        # Random projectors of width 32 give image embeddings too small to steer a random language
        # model; scale them up so that different images (or calibrated features) give different answers.
        # (Gemma 3 even initialises its projection to zeros.)
        if family == "gemma3":
            torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=0.5)
        elif family == "llava":
            torch.nn.init.normal_(model.model.multi_modal_projector.linear_2.weight, std=0.5)
        else:
            torch.nn.init.normal_(model.model.visual.merger.mlp[2].weight, std=0.5)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    for part in processor if isinstance(processor, tuple) else (processor,):
        part.save_pretrained(path)
    logger.info("Built a tiny %s checkpoint in %s", family, path)
    return path

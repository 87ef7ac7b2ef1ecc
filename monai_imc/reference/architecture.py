"""The reference model's architecture: a small LLaVA on a pretrained EfficientNet-Lite0 tower.

It is the architecture of LLaVA-Med and HuatuoGPT-Vision (``LlavaForConditionalGeneration``: vision
tower -> two-layer projector -> Llama), scaled to train on two CPU cores:

- vision tower: ImageNet EfficientNet-Lite0 (:mod:`monai_imc.models.efficientnet_lite`), frozen, at
  224 px, inputs normalised as ``(x - 0.5) / 0.5``; the projector reads the head's 7 x 7 map
  (``vision_feature_layer=-1``, 49 tokens of 1,280 channels), all tokens kept (``"full"``);
- language model: a 2-layer Llama (hidden 256) with the BPE tokenizer trained on the training text.

Example:
    >>> from monai_imc.reference.architecture import ArchitectureConfig, build_model
    >>> model = build_model(ArchitectureConfig(), tokenizer, tower_state)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["ArchitectureConfig", "build_model", "build_processor"]

#: The tower's input normalisation (EfficientNet-Lite's TensorFlow training: ``(x - 0.5) / 0.5``).
TOWER_MEAN = (0.5, 0.5, 0.5)
TOWER_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ArchitectureConfig:
    """Sizes of the reference LLaVA.

    Attributes:
        image_size: input size of the vision tower, pixels (shortest-edge resize, centre crop).
        token_stride: pixels per image token side at ``feature_layer`` (32 for the 7 x 7 head).
        feature_layer: the tower's hidden state the projector reads (-1: head, 1,280 channels).
        text_hidden: Llama width.
        text_layers: Llama depth.
        text_heads: Llama attention heads.
        text_intermediate: Llama MLP width.
        vocab_size: tokenizer vocabulary size to train.
        max_positions: longest sequence (tokens).
    """

    image_size: int = 224
    token_stride: int = 32
    feature_layer: int = -1
    text_hidden: int = 256
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 768
    vocab_size: int = 1200
    max_positions: int = 512

    @property
    def image_tokens(self) -> int:
        """Image tokens per image."""
        return (self.image_size // self.token_stride) ** 2

    def to_dict(self) -> dict[str, Any]:
        """The sizes as a plain dict (for the training config JSON)."""
        return asdict(self)


def build_processor(tokenizer: Any, arch: ArchitectureConfig, chat_template: str) -> Any:
    """The ``LlavaProcessor`` of the reference model (PIL image processor, no torchvision needed).

    Args:
        tokenizer: the trained LLaVA tokenizer (``<image>``, ``<s>``, ``</s>``, ``<pad>``).
        arch: the sizes.
        chat_template: the Jinja chat template.

    Returns:
        The processor; one image becomes :attr:`ArchitectureConfig.image_tokens` image tokens.
    """
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": arch.image_size},
        crop_size={"height": arch.image_size, "width": arch.image_size},
        image_mean=list(TOWER_MEAN),
        image_std=list(TOWER_STD),
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=arch.token_stride,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
        chat_template=chat_template,
    )


def build_model(arch: ArchitectureConfig, tokenizer: Any, tower_state: Mapping[str, torch.Tensor] | None) -> Any:
    """A ``LlavaForConditionalGeneration`` with the EfficientNet-Lite0 tower and a new projector and Llama.

    Args:
        arch: the sizes.
        tokenizer: the trained LLaVA tokenizer.
        tower_state: the tower's pretrained weights
            (:func:`~monai_imc.models.efficientnet_lite.lite0_pretrained_state_dict`); ``None`` leaves
            the tower randomly initialised (tests).

    Returns:
        The model (float32, train mode, tower frozen and in eval mode), with its generation config's
        pad and EOS set.
    """
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from monai_imc.models.efficientnet_lite import EfficientNetLiteVisionConfig, register

    register()
    vision = EfficientNetLiteVisionConfig(image_size=arch.image_size, patch_size=arch.token_stride)
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.text_hidden,
        intermediate_size=arch.text_intermediate,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        num_key_value_heads=arch.text_heads,
        max_position_embeddings=arch.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=arch.feature_layer,
        vision_feature_select_strategy="full",
        image_seq_length=arch.image_tokens,
    )
    model = LlavaForConditionalGeneration(config)
    tower = model.model.vision_tower
    if tower_state is not None:
        tower.load_state_dict(tower_state, strict=True)
    tower.requires_grad_(False)
    tower.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model

"""The reference model's architecture: a small LLaVA (CLIP-style ViT + Llama) built from configs.

It is the architecture of LLaVA-Med and HuatuoGPT-Vision (``LlavaForConditionalGeneration``), scaled
down to train on two CPU cores: a 4-layer ViT (hidden 128) on 96 px images in 12 px patches (64 image
tokens) and a 4-layer Llama (hidden 256).

Example:
    >>> from monai_imc.reference.architecture import ArchitectureConfig, build_model
    >>> model = build_model(ArchitectureConfig(), tokenizer)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ArchitectureConfig", "build_model"]


@dataclass(frozen=True)
class ArchitectureConfig:
    """Sizes of the reference LLaVA.

    Attributes:
        image_size: input size of the vision tower, pixels.
        patch_size: ViT patch size; ``(image_size // patch_size) ** 2`` image tokens per image.
        vision_hidden: ViT width.
        vision_layers: ViT depth.
        vision_heads: ViT attention heads.
        text_hidden: Llama width.
        text_layers: Llama depth.
        text_heads: Llama attention heads.
        text_intermediate: Llama MLP width.
        vocab_size: tokenizer vocabulary size to train.
        max_positions: longest sequence (tokens).
    """

    image_size: int = 96
    patch_size: int = 12
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate: int = 768
    vocab_size: int = 1200
    max_positions: int = 512

    @property
    def image_tokens(self) -> int:
        """Image tokens per image (patches; the CLS token is dropped by the select strategy)."""
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict[str, Any]:
        """The sizes as a plain dict (for the training config JSON)."""
        return asdict(self)


def build_model(arch: ArchitectureConfig, tokenizer: Any) -> Any:
    """A randomly initialised ``LlavaForConditionalGeneration`` of the given sizes for ``tokenizer``.

    The projector reads the ViT's last layer (``vision_feature_layer=-1``): in a tower this shallow,
    every layer is worth its compute.

    Args:
        arch: the sizes.
        tokenizer: the trained LLaVA tokenizer (``<image>``, ``<s>``, ``</s>``, ``<pad>``).

    Returns:
        The model (float32, train mode), with its generation config's pad and EOS set.

    Raises:
        ValueError: if ``image_size`` is not a multiple of ``patch_size``.
    """
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    if arch.image_size % arch.patch_size:
        raise ValueError(f"image_size {arch.image_size} is not a multiple of patch_size {arch.patch_size}.")
    vision = CLIPVisionConfig(
        hidden_size=arch.vision_hidden,
        intermediate_size=4 * arch.vision_hidden,
        num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads,
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        projection_dim=arch.vision_hidden,
    )
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
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model

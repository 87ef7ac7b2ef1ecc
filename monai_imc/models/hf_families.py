"""The per-family adapters: LLaVA, Gemma 3, Qwen2-VL and Qwen2.5-VL, and the family lookup."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from monai_imc.models.base import VisionFeatures
from monai_imc.models.hf_core import HFVisionLanguageModel

__all__ = [
    "SUPPORTED_FAMILIES",
    "Gemma3Adapter",
    "LlavaAdapter",
    "Qwen25VLAdapter",
    "QwenVLAdapter",
    "adapter_class_for",
]

#: Checkpoints in the original (non-HF) LLaVA code base format; they must be converted first.
_NON_HF_LLAVA = ("llava_llama", "llava_mistral", "llava_qwen2", "llava_qwen", "llava_med")


class LlavaAdapter(HFVisionLanguageModel):
    """LLaVA (``LlavaForConditionalGeneration``): LLaVA-Med v1.5 and HuatuoGPT-Vision (HF conversions).

    Tokens are the CLIP layer ``vision_feature_layer`` after the select strategy.
    """

    model_types = ("llava",)
    model_class_name = "LlavaForConditionalGeneration"
    image_prompt = "<image>\n"

    @property
    def vision_tower(self) -> nn.Module:
        """The CLIP (or SigLIP) vision tower."""
        return self.model.model.vision_tower

    @property
    def projector(self) -> nn.Module:
        """``multi_modal_projector`` (two linear layers)."""
        return self.model.model.multi_modal_projector

    def _expected_token_shape(self, features: VisionFeatures, index: int) -> tuple[int, int]:
        return features.num_image_tokens[index], int(self.projector.linear_1.in_features)


class Gemma3Adapter(HFVisionLanguageModel):
    """Gemma 3 (``Gemma3ForConditionalGeneration``): MedGemma.

    Tokens are SigLIP's last hidden state, before the projector's average pooling, norm and projection.
    """

    model_types = ("gemma3",)
    model_class_name = "Gemma3ForConditionalGeneration"
    image_prompt = "<start_of_image>"
    token_type_key = "token_type_ids"
    nest_images = True

    @property
    def vision_tower(self) -> nn.Module:
        """The SigLIP vision tower."""
        return self.model.model.vision_tower

    @property
    def projector(self) -> nn.Module:
        """``multi_modal_projector`` (average pooling, RMS norm, projection)."""
        return self.model.model.multi_modal_projector

    def _expected_token_shape(self, features: VisionFeatures, index: int) -> tuple[int, int]:
        return int(self.projector.patches_per_image) ** 2, int(
            self.projector.mm_soft_emb_norm.weight.shape[0]
        )

    def _project(self, features: VisionFeatures) -> Any:
        return self.projector(torch.stack(features.tokens).to(self.device, self.model.dtype))


class QwenVLAdapter(HFVisionLanguageModel):
    """Qwen2-VL (``Qwen2VLForConditionalGeneration``); base of the Qwen2.5-VL adapter.

    Tokens are the vision transformer's output before ``visual.merger``, one row per patch in the image
    processor's patch order (Qwen2.5-VL's window-attention order is undone), so ``tokens[i]`` has
    ``prod(image_grid_thw[i])`` rows.
    The HF processor is not used (it needs a video processor, hence torchvision): image processor,
    tokenizer and chat template are assembled here the way the processor combines them.
    """

    model_types = ("qwen2_vl",)
    model_class_name = "Qwen2VLForConditionalGeneration"
    image_prompt = "<|vision_start|><|image_pad|><|vision_end|>"
    token_type_key = "mm_token_type_ids"

    @classmethod
    def _load_processor(cls, name_or_path: str, tokenizer: Any) -> tuple[Any | None, Any]:
        import transformers

        return None, transformers.AutoImageProcessor.from_pretrained(name_or_path)

    @property
    def vision_tower(self) -> nn.Module:
        """The vision transformer (``model.visual``, merger included)."""
        return self.model.model.visual

    @property
    def projector(self) -> nn.Module:
        """``visual.merger`` (2x2 patch merge and MLP)."""
        return self.model.model.visual.merger

    @property
    def merge_unit(self) -> int:
        """Patches merged into one language-model token (``spatial_merge_size ** 2``)."""
        return int(self.vision_tower.spatial_merge_size) ** 2

    def _process_images(self, images: list[Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
        out = self.image_processor(images=images, return_tensors="pt")
        grid = out["image_grid_thw"]
        placeholders = [self.image_token * int(g.prod().item() // self.merge_unit) for g in grid]
        return {"pixel_values": out["pixel_values"], "image_grid_thw": grid}, placeholders

    def _window_index(self, grid: torch.Tensor) -> torch.Tensor | None:
        visual = self.vision_tower
        if not hasattr(visual, "window_size"):
            return None  # Qwen2-VL: no window attention, the merger sees the processor's order.
        from transformers.vision_utils import get_vision_window_index

        index, _ = get_vision_window_index(
            grid,
            spatial_merge_size=visual.spatial_merge_size,
            window_size=visual.window_size,
            patch_size=visual.patch_size,
        )
        return index

    def _split_projector_input(self, x: torch.Tensor, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        grid = inputs["image_grid_thw"]
        index = self._window_index(grid)
        if index is not None:
            units = x.reshape(-1, self.merge_unit, x.shape[-1])
            x = units[torch.argsort(index.to(units.device))].reshape(x.shape)
        return list(torch.split(x, grid.prod(-1).tolist()))

    def _expected_token_shape(self, features: VisionFeatures, index: int) -> tuple[int, int]:
        if features.image_grid_thw is None:
            raise ValueError("Qwen-VL features need image_grid_thw; encode the images with a Qwen-VL model.")
        rows = int(features.image_grid_thw[index].prod().item())
        return rows, int(self.projector.ln_q.weight.shape[0])

    def _project(self, features: VisionFeatures) -> Any:
        tokens = torch.cat(features.tokens).to(self.device, self.model.dtype)
        projected = self.projector(tokens)
        return list(torch.split(projected, list(features.num_image_tokens)))

    def _generate_inputs(self, features: VisionFeatures) -> dict[str, Any]:
        return {"image_grid_thw": features.image_grid_thw.to(self.device)}


class Qwen25VLAdapter(QwenVLAdapter):
    """Qwen2.5-VL (Lingshu, HuatuoGPT-Vision-7B-Qwen2.5VL): see :class:`QwenVLAdapter`."""

    model_types = ("qwen2_5_vl",)
    model_class_name = "Qwen2_5_VLForConditionalGeneration"


#: ``model_type`` -> adapter class.
SUPPORTED_FAMILIES: dict[str, type[HFVisionLanguageModel]] = {
    "llava": LlavaAdapter,
    "qwen2_vl": QwenVLAdapter,
    "qwen2_5_vl": Qwen25VLAdapter,
    "gemma3": Gemma3Adapter,
}


def adapter_class_for(model_type: str) -> type[HFVisionLanguageModel]:
    """The adapter class for a config's ``model_type``.

    Args:
        model_type: e.g. ``"llava"``, ``"qwen2_5_vl"``, ``"gemma3"``.

    Returns:
        The adapter class.

    Raises:
        ValueError: if the family is not supported (the message names it and lists the supported ones).
    """
    if model_type in SUPPORTED_FAMILIES:
        return SUPPORTED_FAMILIES[model_type]
    if model_type in _NON_HF_LLAVA:
        raise ValueError(
            f"Model family {model_type!r} is a checkpoint of the original LLaVA code base, not an HF "
            "transformers one; convert it to LlavaForConditionalGeneration (transformers' "
            "convert_llava_weights_to_hf.py) or use an HF-format conversion."
        )
    raise ValueError(
        f"Unsupported model family {model_type!r}; supported model_type values: {sorted(SUPPORTED_FAMILIES)}."
    )

"""HF transformers adapters: LLaVA, Qwen2-VL / Qwen2.5-VL and Gemma 3 behind one class.

The code lives in :mod:`~monai_imc.models.hf_core` (the class: vision pass and generation),
:mod:`~monai_imc.models.hf_text` (batched answers, token scores, chat), :mod:`~monai_imc.models.hf_families`
(the per-family adapters) and :mod:`~monai_imc.models.hf_inputs` (device, dtype, image lists); this module
gathers their public names.

One mechanism serves every family:

- :meth:`HFVisionLanguageModel.encode_images` runs the family's own ``get_image_features`` on the
  processor's output, with a forward pre-hook on the projector (LLaVA and Gemma 3:
  ``multi_modal_projector``; Qwen-VL: ``visual.merger``) that records exactly the tokens the projector
  receives, after the family's ``vision_feature_layer`` / select strategy.
- :meth:`HFVisionLanguageModel.generate` applies that same projector to the (possibly calibrated) tokens
  and hands the result to the HF model's own ``generate`` as ``mm_encoder_outputs``, the pre-encoded
  image features the family's ``forward`` splices into the language model's input in place of a vision
  pass. Placeholder expansion, masks, (multimodal) rotary positions and decoding are the family's own.

Per-family code is a few small methods: where the tower and projector live, how the projector's input
is split per image, and how projected features are packed for ``forward``.
"""

from __future__ import annotations

from monai_imc.models.hf_core import HFVisionLanguageModel
from monai_imc.models.hf_families import (
    SUPPORTED_FAMILIES,
    Gemma3Adapter,
    LlavaAdapter,
    Qwen25VLAdapter,
    QwenVLAdapter,
    adapter_class_for,
)
from monai_imc.models.hf_inputs import Generation, default_device, resolve_dtype

__all__ = [
    "SUPPORTED_FAMILIES",
    "Gemma3Adapter",
    "Generation",
    "HFVisionLanguageModel",
    "LlavaAdapter",
    "Qwen25VLAdapter",
    "QwenVLAdapter",
    "adapter_class_for",
    "default_device",
    "resolve_dtype",
]

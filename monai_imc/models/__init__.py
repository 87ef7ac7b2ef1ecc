"""One seam for every multimodal LLM: the :class:`VisionLanguageModel` protocol and its backends.

- :func:`load_model` picks the HF transformers adapter from the checkpoint's ``model_type``
  (LLaVA, Qwen2-VL, Qwen2.5-VL, Gemma 3) and loads it from a hub id or a local directory.
- :class:`RemoteModel` speaks to an OpenAI-compatible server (vLLM) for the text half (chat, scores).

Example:
    >>> from monai_imc.models import load_model
    >>> model = load_model("lingshu-medical-mllm/Lingshu-7B")  # doctest: +SKIP
    >>> features = model.encode_images([image_a, image_b])  # doctest: +SKIP
    >>> model.generate(features, "Compare the two images.")  # doctest: +SKIP
"""

from __future__ import annotations

import logging

import torch

from monai_imc.models.base import ImageInput, Message, VisionFeatures, VisionLanguageModel
from monai_imc.models.hf import (
    SUPPORTED_FAMILIES,
    Gemma3Adapter,
    HFVisionLanguageModel,
    LlavaAdapter,
    Qwen25VLAdapter,
    QwenVLAdapter,
    adapter_class_for,
)
from monai_imc.models.remote import RemoteModel, RemoteModelError

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_FAMILIES",
    "Gemma3Adapter",
    "HFVisionLanguageModel",
    "ImageInput",
    "LlavaAdapter",
    "Message",
    "Qwen25VLAdapter",
    "QwenVLAdapter",
    "RemoteModel",
    "RemoteModelError",
    "VisionFeatures",
    "VisionLanguageModel",
    "load_model",
    "model_type_of",
]


def model_type_of(name_or_path: str) -> str:
    """The ``model_type`` of a checkpoint's config (hub id or local directory).

    Args:
        name_or_path: hub id or local directory.

    Returns:
        The ``model_type`` string.

    Raises:
        ValueError: if the config cannot be read or has no ``model_type``.
    """
    import json
    from pathlib import Path

    local = Path(name_or_path) / "config.json"
    if local.is_file():
        model_type = json.loads(local.read_text()).get("model_type")
    else:
        from transformers import PretrainedConfig

        try:
            config_dict, _ = PretrainedConfig.get_config_dict(name_or_path)
        except (OSError, ValueError) as error:
            raise ValueError(f"Cannot read the config of {name_or_path!r}: {error}") from error
        model_type = config_dict.get("model_type")
    if not model_type:
        raise ValueError(f"The config of {name_or_path!r} has no model_type.")
    return str(model_type)


def load_model(
    name_or_path: str,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> HFVisionLanguageModel:
    """Load a multimodal LLM from a hub id or a local directory, with the adapter of its family.

    The family comes from the config's ``model_type``: ``llava``, ``qwen2_vl``, ``qwen2_5_vl`` or
    ``gemma3``. Weights are bfloat16 on GPU and float32 on CPU unless ``dtype`` says otherwise.

    Args:
        name_or_path: hub id (e.g. ``"google/medgemma-4b-it"``) or directory written by ``save_pretrained``.
        device: ``"cuda"``, ``"cpu"``, a ``torch.device``; default: the first GPU if any, else the CPU.
        dtype: e.g. ``torch.bfloat16`` or ``"float32"``; default as above.

    Returns:
        The adapter; it implements :class:`VisionLanguageModel`.

    Raises:
        ValueError: if the family is unsupported or the config cannot be read.
    """
    from monai_imc.models.efficientnet_lite import register

    register()  # the reference model's tower type, so its stock LLaVA checkpoint loads
    cls = adapter_class_for(model_type_of(str(name_or_path)))
    return cls.from_pretrained(str(name_or_path), device=device, dtype=dtype)

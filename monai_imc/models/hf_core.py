"""The HF transformers adapter core: LLaVA, Qwen2-VL / Qwen2.5-VL and Gemma 3 behind one class.

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

import inspect
import logging
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from monai_imc.models.base import ImageInput, VisionFeatures
from monai_imc.models.hf_inputs import (
    _as_image_list,
    _describe,
    default_device,
    resolve_dtype,
)
from monai_imc.models.hf_text import HFTextMixin

logger = logging.getLogger(__name__)

__all__ = ["HFVisionLanguageModel"]


class HFVisionLanguageModel(HFTextMixin):
    """A multimodal LLM from HF transformers behind the ``VisionLanguageModel`` protocol.

    Use :func:`monai_imc.models.load_model` to build the right subclass from a checkpoint.

    Args:
        model: the ``*ForConditionalGeneration`` model (in eval mode, on its device).
        tokenizer: its tokenizer.
        image_processor: its image processor.
        processor: the family's HF processor, when it can be built (not for Qwen-VL without a video
            processor); ``None`` makes the adapter use ``image_processor`` and ``tokenizer`` directly.
        chat_template: the Jinja chat template (the processor's, else the tokenizer's); ``None`` means
            prompts are used as given.
        name: a label for logs and reports (hub id or path).

    Example:
        >>> from monai_imc.models import load_model
        >>> model = load_model("google/medgemma-4b-it")  # doctest: +SKIP
        >>> features = model.encode_images(image)  # doctest: +SKIP
        >>> model.generate(features, "Is there a pleural effusion?")  # doctest: +SKIP
    """

    #: ``model_type`` values this adapter serves.
    model_types: ClassVar[tuple[str, ...]] = ()
    #: Name of the transformers class that loads the checkpoint.
    model_class_name: ClassVar[str] = ""
    #: Where the image placeholder(s) go when a prompt is built without a chat template.
    image_prompt: ClassVar[str] = ""
    #: Name of the token-type input the family's ``forward`` takes (``None``: none).
    token_type_key: ClassVar[str | None] = None
    #: Whether the processor takes a batch's images as one nested list (one sample, several images).
    nest_images: ClassVar[bool] = False

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        image_processor: Any,
        processor: Any | None = None,
        chat_template: str | None = None,
        name: str = "",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.processor = processor
        self.chat_template = chat_template
        self.name = name or type(model).__name__
        self.family = str(model.config.model_type)
        self.image_token_id = int(model.config.image_token_id)
        self.image_token = self._find_image_token()
        if "mm_encoder_outputs" not in inspect.signature(model.forward).parameters:
            import transformers

            raise RuntimeError(
                f"{type(model).__name__}.forward takes no mm_encoder_outputs in transformers "
                f"{transformers.__version__}; monai-imc needs transformers>=5.23 to splice features."
            )
        # One model is shared by the operators (perceiver, calibrator, agents), possibly from several
        # threads; the projector hook of encode_images must not see another thread's generate.
        self._lock = threading.RLock()
        # Text-only calls (the SMS agents' scores and chats) never run the projector: they take their own
        # lock, so that a text agent can work while another thread encodes an image (IMCPipeline.run).
        self._text_lock = threading.RLock()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> HFVisionLanguageModel:
        """Load model, tokenizer, image processor and chat template of ``name_or_path``.

        Args:
            name_or_path: hub id or local directory.
            device: where to run; default :func:`default_device`.
            dtype: weights' dtype; default :func:`resolve_dtype`.

        Returns:
            The adapter, model in eval mode.
        """
        import transformers

        device = torch.device(device) if device is not None else default_device()
        dtype = resolve_dtype(dtype, device)
        model_cls = getattr(transformers, cls.model_class_name)
        model = model_cls.from_pretrained(name_or_path, dtype=dtype).to(device).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path)
        processor, image_processor = cls._load_processor(name_or_path, tokenizer)
        template = getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)
        logger.info("Loaded %s (%s) on %s as %s", name_or_path, cls.model_class_name, device, dtype)
        return cls(model, tokenizer, image_processor, processor, template, name=str(name_or_path))

    @classmethod
    def _load_processor(cls, name_or_path: str, tokenizer: Any) -> tuple[Any | None, Any]:
        import transformers

        processor = transformers.AutoProcessor.from_pretrained(name_or_path)
        return processor, processor.image_processor

    def _find_image_token(self) -> str:
        token = getattr(self.processor, "image_token", None) or getattr(self.tokenizer, "image_token", None)
        if token is None:
            token = self.tokenizer.convert_ids_to_tokens(self.image_token_id)
        return str(token)

    # ------------------------------------------------------------------ family hooks
    @property
    def device(self) -> torch.device:
        """The device of the model's weights."""
        return next(self.model.parameters()).device

    @property
    def vision_tower(self) -> nn.Module:
        """The vision encoder module (one forward per batch of images)."""
        raise NotImplementedError

    @property
    def projector(self) -> nn.Module:
        """The module that maps vision tokens to the language model's embedding space."""
        raise NotImplementedError

    def _process_images(self, images: list[Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Run the family's processor: the model's image inputs and one placeholder string per image."""
        nested = [images] if self.nest_images else images
        out = self.processor(
            images=nested,
            text=[self.processor.image_token * len(images)],
            return_tensors="pt",
            return_text_replacement_offsets=True,
        )
        placeholders = [r["replacement"] for r in out["text_replacement_offsets"][0]]
        drop = {
            "input_ids",
            "attention_mask",
            "token_type_ids",
            "mm_token_type_ids",
            "text_replacement_offsets",
        }
        return {k: v for k, v in out.items() if k not in drop}, placeholders

    def _split_projector_input(self, x: torch.Tensor, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Split the projector's batched input into one ``(tokens, dim)`` tensor per image."""
        return list(x.unbind(0))

    def _expected_token_shape(self, features: VisionFeatures, index: int) -> tuple[int, int]:
        """The ``(tokens, dim)`` shape this model's projector expects for image ``index``."""
        raise NotImplementedError

    def _project(self, features: VisionFeatures) -> Any:
        """Apply the projector to the features, packed as the family's ``forward`` expects them."""
        projected = self.projector(torch.stack(features.tokens).to(self.device, self.model.dtype))
        return list(projected.unbind(0))

    def _generate_inputs(self, features: VisionFeatures) -> dict[str, Any]:
        """Extra ``generate`` inputs the family needs besides the text and the projected features."""
        return {}

    # ------------------------------------------------------------------ protocol
    def encode_images(self, images: ImageInput | Sequence[ImageInput]) -> VisionFeatures:
        """Run the vision tower once on every image and return the projector's input tokens.

        Args:
            images: a PIL image or numpy array ((H, W), (H, W, C) or (C, H, W), preferably uint8), or a list
                of them; sizes may differ (the family's processor resizes or tiles each image).

        Returns:
            The features, one entry per image.

        Raises:
            TypeError: if an image is neither a PIL image nor a numpy array.
            ValueError: if the processor rejects an image (the message names which one and why).
        """
        image_list = _as_image_list(images)
        sizes = tuple(
            (int(im.size[1]), int(im.size[0])) if not isinstance(im, np.ndarray) else self._array_hw(im)
            for im in image_list
        )
        inputs, placeholders = self._process_checked(image_list)
        inputs = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)

        captured: list[torch.Tensor] = []

        def grab(module: nn.Module, args: tuple, kwargs: dict) -> None:
            captured.append((args[0] if args else next(iter(kwargs.values()))).detach())

        with self._lock:
            handle = self.projector.register_forward_pre_hook(grab, with_kwargs=True)
            try:
                with torch.no_grad():
                    self.model.model.get_image_features(**inputs)
            finally:
                handle.remove()
        if len(captured) != 1:
            raise RuntimeError(f"Expected one projector call during encoding, saw {len(captured)}.")
        tokens = tuple(t.clone() for t in self._split_projector_input(captured[0], inputs))
        if len(tokens) != len(placeholders):
            raise ValueError(
                f"The {self.family} processor made {len(tokens)} vision inputs for "
                f"{len(placeholders)} images; image tiling (e.g. pan-and-scan) is not supported, "
                "disable it in the processor config."
            )
        counts = tuple(self._count_image_tokens(p) for p in placeholders)
        pooled = torch.stack([t.float().mean(dim=0) for t in tokens])
        return VisionFeatures(
            tokens=tokens,
            pooled=pooled,
            family=self.family,
            num_image_tokens=counts,
            placeholders=tuple(placeholders),
            image_grid_thw=inputs.get("image_grid_thw"),
            image_sizes=sizes,
        )

    def generate(self, features: VisionFeatures, prompt: str, **gen: Any) -> str:
        """Answer ``prompt`` from ``features`` (possibly calibrated), with no second vision pass.

        Args:
            features: from :meth:`encode_images` of a model of the same family and size.
            prompt: the question. It is wrapped in the chat template with one image slot per image, unless
                it already holds the family's image token once per image (then it is used verbatim).
            **gen: ``generate`` options; defaults ``max_new_tokens=128``, ``do_sample=False``.

        Returns:
            The decoded answer, special tokens removed.

        Raises:
            ValueError: if the features do not fit this model (family, shapes, number of images).
        """
        new_tokens = self.generate_ids(features, prompt, **gen)
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()

    def generate_ids(self, features: VisionFeatures, prompt: str, **gen: Any) -> torch.Tensor:
        """Like :meth:`generate`, but return the new token ids (1-D) instead of text.

        Args:
            features: as for :meth:`generate`.
            prompt: as for :meth:`generate`.
            **gen: as for :meth:`generate`.

        Returns:
            The generated token ids, prompt excluded.

        Raises:
            ValueError: if the features do not fit this model.
        """
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        self.check_features(features)
        text = self.build_prompt(prompt, features.num_images)
        inputs = self.text_inputs(text, features.placeholders)
        with self._lock, torch.no_grad():
            projected = self._project(features)
            out = self.model.generate(
                **inputs,
                **self._generate_inputs(features),
                mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=projected)},
                **self._gen_defaults(gen),
            )
        return out[0, inputs["input_ids"].shape[1] :].cpu()

    def build_prompt(self, prompt: str, num_images: int) -> str:
        """The full prompt text for a question about ``num_images`` images (placeholders not expanded).

        Args:
            prompt: the question, or a full prompt that already holds the image token once per image.
            num_images: how many images the answer uses.

        Returns:
            The prompt with one image token per image.

        Raises:
            ValueError: if ``prompt`` holds the image token, but not once per image.
        """
        count = prompt.count(self.image_token)
        if count == num_images and count > 0:
            return prompt
        if count:
            raise ValueError(
                f"prompt holds {count} {self.image_token!r} placeholders but the features have "
                f"{num_images} images."
            )
        content = [{"type": "image"} for _ in range(num_images)] + [{"type": "text", "text": prompt}]
        return self.render_chat([{"role": "user", "content": content}], add_generation_prompt=True)

    def text_inputs(self, text: str, placeholders: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise a prompt as the family's processor does, with each image token expanded.

        Args:
            text: a prompt with one :attr:`image_token` per image.
            placeholders: the expanded text per image (:attr:`VisionFeatures.placeholders`).

        Returns:
            ``input_ids``, ``attention_mask`` and the family's token-type ids, on the model's device.

        Raises:
            ValueError: if the number of image tokens in ``text`` differs from ``len(placeholders)``.
        """
        pieces = text.split(self.image_token)
        if len(pieces) - 1 != len(placeholders):
            raise ValueError(
                f"The prompt holds {len(pieces) - 1} {self.image_token!r} tokens for "
                f"{len(placeholders)} images."
            )
        expanded = pieces[0] + "".join(p + rest for p, rest in zip(placeholders, pieces[1:]))
        bos = getattr(self.tokenizer, "bos_token", None)
        add_special = not (bos and expanded.startswith(bos))
        enc = self.tokenizer(expanded, return_tensors="pt", add_special_tokens=add_special)
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if self.token_type_key is not None:
            inputs[self.token_type_key] = (enc["input_ids"] == self.image_token_id).long()
        return {k: v.to(self.device) for k, v in inputs.items()}

    # ------------------------------------------------------------------ checks and helpers
    def check_features(self, features: VisionFeatures) -> None:
        """Check that ``features`` fit this model.

        Args:
            features: the features to check.

        Raises:
            TypeError: if ``features`` is not a :class:`VisionFeatures`.
            ValueError: naming the offending family, count or shape.
        """
        if not isinstance(features, VisionFeatures):
            raise TypeError(f"features must be VisionFeatures, got {type(features).__name__}.")
        if features.family != self.family:
            raise ValueError(
                f"features come from a {features.family!r} model; this model is {self.family!r}."
            )
        if features.num_images == 0:
            raise ValueError("features hold no images.")
        for i, t in enumerate(features.tokens):
            expected = self._expected_token_shape(features, i)
            if not torch.is_tensor(t) or tuple(t.shape) != expected:
                shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
                raise ValueError(
                    f"features.tokens[{i}] has shape {shape}; this {self.family} model's projector expects "
                    f"{expected}."
                )

    def _count_image_tokens(self, placeholder: str) -> int:
        ids = self.tokenizer(placeholder, add_special_tokens=False)["input_ids"]
        return sum(1 for i in ids if i == self.image_token_id)

    @staticmethod
    def _array_hw(image: np.ndarray) -> tuple[int, int]:
        if image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
            return int(image.shape[1]), int(image.shape[2])
        return int(image.shape[0]), int(image.shape[1])

    def _process_checked(self, images: list[Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
        try:
            return self._process_images(images)
        except (ValueError, TypeError, IndexError, RuntimeError) as batch_error:
            for i, image in enumerate(images):
                try:
                    self._process_images([image])
                except (ValueError, TypeError, IndexError, RuntimeError) as error:
                    raise ValueError(
                        f"The {self.family} image processor rejected images[{i}] "
                        f"({_describe(image)}): {error}"
                    ) from error
            raise ValueError(
                f"The {self.family} image processor rejected the batch: {batch_error}"
            ) from batch_error

    def _gen_defaults(self, gen: dict[str, Any]) -> dict[str, Any]:
        out = {"max_new_tokens": 128, "do_sample": False}
        pad = self.tokenizer.pad_token_id
        if pad is not None:
            out["pad_token_id"] = pad
        out.update(gen)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, family={self.family!r}, device={self.device})"

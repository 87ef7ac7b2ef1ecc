"""HF transformers adapters: LLaVA, Qwen2-VL / Qwen2.5-VL and Gemma 3 behind one class.

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

import dataclasses
import inspect
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from monai_imc.models.base import ImageInput, Message, VisionFeatures

logger = logging.getLogger(__name__)

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

#: Checkpoints in the original (non-HF) LLaVA code base format; they must be converted first.
_NON_HF_LLAVA = ("llava_llama", "llava_mistral", "llava_qwen2", "llava_qwen", "llava_med")


def default_device() -> torch.device:
    """The device a model goes to when none is given: the first CUDA GPU if there is one, else the CPU.

    Returns:
        The device.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """Resolve the weights' dtype: bfloat16 on GPU, float32 on CPU, unless one is given.

    Args:
        dtype: a torch dtype, its name (``"bfloat16"``, ``"float16"``, ``"float32"``) or ``None``.
        device: where the model will run.

    Returns:
        The dtype.

    Raises:
        ValueError: if ``dtype`` names no floating point torch dtype.
    """
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"Unknown dtype {dtype!r}; use e.g. 'bfloat16', 'float16' or 'float32'.")
    return resolved


def _as_image_list(images: ImageInput | Sequence[ImageInput]) -> list[Any]:
    """Normalise the images argument to a non-empty list of RGB PIL images or numpy arrays."""
    from PIL import Image

    if isinstance(images, (Image.Image, np.ndarray)):
        images = [images]
    if not isinstance(images, (list, tuple)):
        raise TypeError(
            f"images must be a PIL image, a numpy array or a list of them; got {type(images).__name__}."
        )
    if len(images) == 0:
        raise ValueError("images is empty; pass at least one image.")
    out: list[Any] = []
    for i, image in enumerate(images):
        if isinstance(image, Image.Image):
            out.append(image if image.mode == "RGB" else image.convert("RGB"))
        elif isinstance(image, np.ndarray):
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            if image.ndim not in (2, 3):
                raise ValueError(
                    f"images[{i}] has shape {image.shape}; expected (H, W), (H, W, C) or (C, H, W)."
                )
            if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[-1] in (3, 4)):
                # Unambiguous channels-last 8-bit images go through PIL, exactly like PIL inputs.
                out.append(Image.fromarray(image).convert("RGB"))
                continue
            if image.ndim == 2:
                image = np.repeat(image[..., None], 3, axis=-1)
            out.append(image)
        else:
            raise TypeError(
                f"images[{i}] has type {type(image).__name__}; expected a PIL image or numpy array."
            )
    return out


def _describe(image: Any) -> str:
    if isinstance(image, np.ndarray):
        return f"array of shape {image.shape} and dtype {image.dtype}"
    return (
        f"{type(image).__name__} of size {getattr(image, 'size', '?')} and mode {getattr(image, 'mode', '?')}"
    )


@dataclass(frozen=True)
class Generation:
    """One generated answer and the probability the (greedy) decoder gave it.

    Attributes:
        text: the decoded answer, special tokens removed.
        probability: product of the probabilities of the generated tokens, end-of-sequence included.
    """

    text: str
    probability: float


def _merge_features(features: Sequence[VisionFeatures]) -> VisionFeatures:
    """The images of several :class:`VisionFeatures` as one, in order (one batch's projector input)."""
    grids = [f.image_grid_thw for f in features]
    return dataclasses.replace(
        features[0],
        tokens=tuple(t for f in features for t in f.tokens),
        pooled=torch.cat([f.pooled.to(features[0].pooled.device) for f in features]),
        num_image_tokens=tuple(n for f in features for n in f.num_image_tokens),
        placeholders=tuple(p for f in features for p in f.placeholders),
        image_grid_thw=torch.cat(grids) if all(g is not None for g in grids) else None,
        image_sizes=tuple(s for f in features for s in f.image_sizes),
    )


class HFVisionLanguageModel:
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

    def generate_batch(
        self, features: Sequence[VisionFeatures], prompts: Sequence[str], **gen: Any
    ) -> list[Generation]:
        """Answer several prompts, each about its own features, in one left-padded ``generate`` call.

        Greedy decoding gives the answers :meth:`generate` gives one by one (up to float rounding of the
        batched matrix products); each answer also carries the probability the decoder gave it.

        Args:
            features: one :class:`VisionFeatures` per prompt (from :meth:`encode_images`, possibly modified).
            prompts: the questions, as for :meth:`generate`.
            **gen: ``generate`` options; defaults ``max_new_tokens=128``, ``do_sample=False``.

        Returns:
            One :class:`Generation` per prompt, in order.

        Raises:
            ValueError: if the lengths differ or some features do not fit this model.
        """
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if len(features) != len(prompts):
            raise ValueError(f"{len(features)} features for {len(prompts)} prompts; give one per prompt.")
        if not prompts:
            return []
        for f in features:
            self.check_features(f)
        encoded = [self.text_inputs(self.build_prompt(p, f.num_images), f.placeholders)
                   for f, p in zip(features, prompts)]
        width = max(int(e["input_ids"].shape[1]) for e in encoded)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        batch = {
            key: torch.cat([
                nn.functional.pad(e[key], (width - int(e[key].shape[1]), 0), value=pad if key == "input_ids" else 0)
                for e in encoded
            ])
            for key in encoded[0]
        }
        merged = _merge_features(features)
        options = self._gen_defaults(gen)
        options.update(output_scores=True, return_dict_in_generate=True, pad_token_id=pad)
        with self._lock, torch.no_grad():
            projected = self._project(merged)
            out = self.model.generate(
                **batch,
                **self._generate_inputs(merged),
                mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=projected)},
                **options,
            )
        new = out.sequences[:, width:].cpu()
        logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1).cpu()
        picked = logprobs.gather(-1, new[..., None])[..., 0]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        results = []
        for row, scores in zip(new.tolist(), picked.tolist()):
            stop = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
            results.append(Generation(
                text=self.tokenizer.decode(row[:stop], skip_special_tokens=True).strip(),
                probability=float(np.exp(sum(scores[:stop]))),
            ))
        return results

    def log_likelihood(self, text: str, context: str = "") -> float:
        """Sum of the log-probabilities the model gives the tokens of ``text`` after ``context``.

        ``context + text`` is tokenised as one string (as a server would); a token counts as part of
        ``text`` when it ends after ``len(context)`` characters. The first token of the sequence has no
        prediction and is never counted (tokenizers with a BOS token put it there).

        Args:
            text: the continuation to score; must not be empty.
            context: the text before it (may be empty).

        Returns:
            The summed natural-log probability.

        Raises:
            ValueError: if ``text`` is empty.
        """
        if not text:
            raise ValueError("text is empty; there is nothing to score.")
        rows = self.prompt_logprobs(context + text)
        boundary = len(context)
        return float(sum(lp for _tok, lp, _start, end in rows if lp is not None and end > boundary))

    def log_likelihoods(self, texts: Sequence[str], context: str = "", batch_size: int = 64) -> list[float]:
        """:meth:`log_likelihood` of several continuations of one ``context``, batched: one model call.

        Each ``context + text`` is tokenised on its own (right-padded), so every score equals the
        one :meth:`log_likelihood` gives (up to padding's floating-point noise).

        Args:
            texts: the continuations; none may be empty.
            context: the text before each of them.
            batch_size: sequences per forward pass.

        Raises:
            ValueError: if a text is empty.
        """
        if any(not t for t in texts):
            raise ValueError("a text is empty; there is nothing to score.")
        scores: list[float] = []
        boundary = len(context)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id or 0
        for start in range(0, len(texts), batch_size):
            chunk = [context + t for t in texts[start : start + batch_size]]
            encs = [self.tokenizer(s, return_offsets_mapping=True) for s in chunk]
            width = max(len(e["input_ids"]) for e in encs)
            ids = torch.full((len(encs), width), int(pad_id), dtype=torch.long)
            mask = torch.zeros((len(encs), width), dtype=torch.long)
            for row, e in enumerate(encs):
                ids[row, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
                mask[row, : len(e["input_ids"])] = 1
            with self._lock, torch.no_grad():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            picked = logprobs.gather(-1, ids[:, 1:, None].to(logprobs.device))[..., 0].cpu()
            for row, e in enumerate(encs):
                ends = [int(end) for _s, end in e["offset_mapping"]]
                scores.append(float(sum(picked[row, k - 1] for k in range(1, len(ends)) if ends[k] > boundary)))
        return scores

    def prompt_logprobs(self, prompt: str) -> list[tuple[str, float | None, int, int]]:
        """Per-token log-probabilities of a prompt, as a completion server reports them with ``echo``.

        Args:
            prompt: the text (tokenised with the tokenizer's special tokens, e.g. BOS).

        Returns:
            One ``(token_text, logprob, start, end)`` per token; ``logprob`` is ``None`` for the first
            token; ``start``/``end`` are character offsets into ``prompt`` (``0, 0`` for special tokens).
        """
        enc = self.tokenizer(prompt, return_tensors="pt", return_offsets_mapping=True)
        ids = enc["input_ids"].to(self.device)
        with self._lock, torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=enc["attention_mask"].to(self.device)).logits
        logprobs = torch.log_softmax(logits[0, :-1].float(), dim=-1)
        picked = logprobs.gather(-1, ids[0, 1:, None])[:, 0].tolist()
        offsets = enc["offset_mapping"][0].tolist()
        tokens = [self.tokenizer.decode([i]) for i in ids[0].tolist()]
        values: list[float | None] = [None, *picked]
        return [(t, v, int(s), int(e)) for t, v, (s, e) in zip(tokens, values, offsets)]

    def chat(self, messages: Sequence[Message], **gen: Any) -> str:
        """A text-only chat turn with the model's chat template.

        Args:
            messages: ``[{"role": ..., "content": str}, ...]``.
            **gen: ``generate`` options; defaults ``max_new_tokens=128``, ``do_sample=False``.

        Returns:
            The assistant's reply.

        Raises:
            ValueError: if ``messages`` is empty or a message lacks a role or content.
        """
        text = self.render_chat(messages, add_generation_prompt=True)
        inputs = self.text_inputs(text, ())
        with self._lock, torch.no_grad():
            out = self.model.generate(**inputs, **self._gen_defaults(gen))
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def chat_batch(self, conversations: Sequence[Sequence[Message]], **gen: Any) -> list[str]:
        """Several text-only chat turns in one left-padded ``generate`` call.

        Greedy decoding gives the replies :meth:`chat` gives one by one (up to float rounding of the
        batched matrix products).

        Args:
            conversations: one message list per turn, as for :meth:`chat`.
            **gen: ``generate`` options; defaults ``max_new_tokens=128``, ``do_sample=False``.

        Returns:
            One reply per conversation, in order.

        Raises:
            ValueError: if a conversation is empty or a message lacks a role or content.
        """
        if not conversations:
            return []
        encoded = [self.text_inputs(self.render_chat(m, add_generation_prompt=True), ()) for m in conversations]
        width = max(int(e["input_ids"].shape[1]) for e in encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        batch = {
            key: torch.cat([
                nn.functional.pad(e[key], (width - int(e[key].shape[1]), 0), value=pad if key == "input_ids" else 0)
                for e in encoded
            ])
            for key in encoded[0]
        }
        options = self._gen_defaults(gen)
        options["pad_token_id"] = pad
        with self._lock, torch.no_grad():
            out = self.model.generate(**batch, **options)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in out[:, width:]]

    # ------------------------------------------------------------------ prompts and text
    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """Render messages with the chat template (plain ``role: content`` lines when there is none).

        Args:
            messages: OpenAI-style messages; string contents are turned into ``[{"type": "text", ...}]``.
            add_generation_prompt: end with the assistant's turn opening.

        Returns:
            The prompt text.

        Raises:
            ValueError: if ``messages`` is empty or a message lacks a role or content.
        """
        if not messages:
            raise ValueError("messages is empty.")
        normalised = []
        for i, m in enumerate(messages):
            if "role" not in m or "content" not in m:
                raise ValueError(f"messages[{i}] needs 'role' and 'content'; got keys {sorted(m)}.")
            content = m["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            normalised.append({"role": m["role"], "content": content})
        if self.chat_template is None:
            lines = []
            for m in normalised:
                parts = [
                    self.image_prompt if c["type"] == "image" else c.get("text", "") for c in m["content"]
                ]
                lines.append(f"{m['role']}: {''.join(parts)}")
            return "\n".join(lines) + ("\nassistant:" if add_generation_prompt else "")
        return self.tokenizer.apply_chat_template(
            normalised,
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )

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

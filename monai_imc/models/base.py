"""The seam between IMC and any multimodal LLM: the :class:`VisionLanguageModel` protocol.

IMC uses one loaded model four ways (see ``DESIGN.md``):

- :meth:`VisionLanguageModel.encode_images`: the vision tower's features at the layer that feeds the
  projector, one vision pass per image (the perceiver and the calibrator work on these);
- :meth:`VisionLanguageModel.generate`: an answer from given, possibly calibrated, features, with no
  second vision pass;
- :meth:`VisionLanguageModel.log_likelihood`: the model's own score of a text after a context;
- :meth:`VisionLanguageModel.chat`: a text-only turn (the SMS agents).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "BatchChat",
    "BatchGenerator",
    "Capabilities",
    "ChatRenderer",
    "Fingerprintable",
    "ImageInput",
    "Message",
    "TokenScorer",
    "VisionFeatures",
    "VisionLanguageModel",
    "image_token_of",
]

#: One image: a PIL image, or a numpy array (H, W), (H, W, C) or (C, H, W), preferably uint8.
ImageInput = Union["Image.Image", np.ndarray]

#: One chat message, OpenAI style: ``{"role": "system" | "user" | "assistant", "content": str}``.
Message = dict[str, Any]


@dataclass(frozen=True)
class VisionFeatures:
    """Pre-projector vision features of a batch of images, and what generation needs to use them.

    ``tokens[i]`` holds image ``i``'s tokens exactly as the family's own code hands them to its projector
    (LLaVA: ``multi_modal_projector`` input after ``vision_feature_layer`` / select strategy; Qwen2-VL and
    Qwen2.5-VL: ``visual.merger`` input, in the processor's patch order; Gemma 3: ``multi_modal_projector``
    input). A calibrator builds modified features with :meth:`with_tokens` (the dataclass is frozen) and
    passes them to :meth:`VisionLanguageModel.generate`.

    Attributes:
        tokens: one ``(num_vision_tokens_i, dim)`` tensor per image, on the model's device and dtype.
        pooled: ``(num_images, dim)`` mean of each image's tokens (the perceiver's per-image vector).
        family: ``model_type`` of the model that produced the features (``"llava"``, ``"qwen2_vl"`` ...).
        num_image_tokens: per image, how many language-model positions the projected image fills.
        placeholders: per image, the expanded placeholder text the family's processor puts in the prompt
            for that image (e.g. the image token repeated ``num_image_tokens`` times).
        image_grid_thw: Qwen-VL only: ``(num_images, 3)`` patch grid (temporal, height, width) per image.
        image_sizes: the (height, width) of each input image before preprocessing.
    """

    tokens: tuple[torch.Tensor, ...]
    pooled: torch.Tensor
    family: str
    num_image_tokens: tuple[int, ...]
    placeholders: tuple[str, ...] = field(repr=False)
    image_grid_thw: torch.Tensor | None = None
    image_sizes: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        """Check that the per-image fields agree.

        Raises:
            ValueError: if the per-image fields have different lengths.
        """
        n = len(self.tokens)
        lengths = {
            "tokens": n,
            "pooled": int(self.pooled.shape[0]),
            "num_image_tokens": len(self.num_image_tokens),
            "placeholders": len(self.placeholders),
        }
        if self.image_grid_thw is not None:
            lengths["image_grid_thw"] = int(self.image_grid_thw.shape[0])
        if len(set(lengths.values())) != 1:
            raise ValueError(f"VisionFeatures fields disagree on the number of images: {lengths}")

    @property
    def num_images(self) -> int:
        """Number of images in the batch."""
        return len(self.tokens)

    def to(self, device: torch.device | str) -> VisionFeatures:
        """Return a copy with every tensor on ``device`` (e.g. ``"cpu"`` to store prototypes).

        Args:
            device: the target device.

        Returns:
            The moved features.
        """
        grid = self.image_grid_thw.to(device) if self.image_grid_thw is not None else None
        return dataclasses.replace(
            self,
            tokens=tuple(t.to(device) for t in self.tokens),
            pooled=self.pooled.to(device),
            image_grid_thw=grid,
        )

    def with_tokens(self, tokens: Sequence[torch.Tensor], recompute_pooled: bool = True) -> VisionFeatures:
        """Return a copy with new (for example calibrated) tokens.

        Args:
            tokens: one tensor per image, each of the same shape as the original.
            recompute_pooled: recompute :attr:`pooled` as the mean of the new tokens.

        Returns:
            The new features; everything else is shared with ``self``.

        Raises:
            ValueError: if the number of images or a tensor's shape changes.
        """
        tokens = tuple(tokens)
        if len(tokens) != len(self.tokens):
            raise ValueError(f"Expected tokens for {len(self.tokens)} images, got {len(tokens)}.")
        for i, (new, old) in enumerate(zip(tokens, self.tokens)):
            if tuple(new.shape) != tuple(old.shape):
                raise ValueError(
                    f"tokens[{i}] has shape {tuple(new.shape)}; the original has shape {tuple(old.shape)}."
                )
        pooled = self.pooled
        if recompute_pooled:
            import torch

            pooled = torch.stack([t.float().mean(dim=0) for t in tokens]).to(self.pooled.dtype)
        return dataclasses.replace(self, tokens=tokens, pooled=pooled)


@runtime_checkable
class VisionLanguageModel(Protocol):
    """What IMC needs from a multimodal LLM.

    :class:`monai_imc.models.hf.HFVisionLanguageModel` implements it over HF transformers;
    :class:`monai_imc.models.remote.RemoteModel` implements the text half over an OpenAI-compatible server.
    """

    name: str

    def encode_images(self, images: ImageInput | Sequence[ImageInput]) -> VisionFeatures:
        """Run the vision tower once per image and return its pre-projector features.

        Args:
            images: one image or a sequence of images (sizes may differ).

        Returns:
            The features of every image.
        """
        ...

    def generate(self, features: VisionFeatures, prompt: str, **gen: Any) -> str:
        """Answer ``prompt`` about the images behind ``features``, without another vision pass.

        Args:
            features: from :meth:`encode_images`, possibly modified.
            prompt: the user's question.
            **gen: generation options (``max_new_tokens``, ``do_sample`` ...).

        Returns:
            The decoded answer.
        """
        ...

    def log_likelihood(self, text: str, context: str = "") -> float:
        """Sum of the log-probabilities of the tokens of ``text`` following ``context``.

        Args:
            text: the continuation to score.
            context: what precedes it.

        Returns:
            The summed natural-log probability (<= 0).
        """
        ...

    def chat(self, messages: Sequence[Message], **gen: Any) -> str:
        """A text-only chat turn.

        Args:
            messages: the conversation so far, OpenAI style.
            **gen: generation options.

        Returns:
            The assistant's reply.
        """
        ...


# --- optional capabilities: declared here, checked once (Capabilities.of), never probed with getattr ---


@runtime_checkable
class TokenScorer(Protocol):
    """Scores many continuations in one pass, and gives the log-probability of every prompt token.

    :class:`~monai_imc.models.hf.HFVisionLanguageModel` has it; SMS's lexical specialists need it.
    """

    def log_likelihoods(self, texts: Sequence[str], context: str = "", batch_size: int = 64) -> list[float]:
        """:meth:`VisionLanguageModel.log_likelihood` of each of ``texts`` after one ``context``."""
        ...

    def prompt_logprobs(self, prompt: str) -> list[tuple[str, float | None, int, int]]:
        """``(token, log-probability or None for the first, start, end)`` per token of ``prompt``."""
        ...


@runtime_checkable
class BatchGenerator(Protocol):
    """Answers several prompts, each about its own features, in one call."""

    def generate_batch(
        self, features: Sequence[VisionFeatures], prompts: Sequence[str], **gen: Any
    ) -> list[Any]:
        """One result per prompt, each with ``text`` and ``probability`` (see ``hf.Generation``)."""
        ...


@runtime_checkable
class BatchChat(Protocol):
    """Runs several text-only chat turns in one call."""

    def chat_batch(self, conversations: Sequence[Sequence[Message]], **gen: Any) -> list[str]:
        """One reply per conversation."""
        ...


@runtime_checkable
class ChatRenderer(Protocol):
    """Renders a chat with the model's own template; knows its tokenizer and its image placeholder."""

    tokenizer: Any
    image_token: str

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The prompt text the model would see for ``messages``."""
        ...


@runtime_checkable
class Fingerprintable(Protocol):
    """Exposes the weights a prototype bank is tied to: the HF model (its config) and its vision tower."""

    model: Any
    vision_tower: Any


@dataclass(frozen=True)
class Capabilities:
    """Which optional capabilities a model has, checked once.

    Attributes:
        token_scores: :class:`TokenScorer`.
        batch_generate: :class:`BatchGenerator`.
        batch_chat: :class:`BatchChat`.
        chat_rendering: :class:`ChatRenderer`.
        fingerprint: :class:`Fingerprintable`.
    """

    token_scores: bool
    batch_generate: bool
    batch_chat: bool
    chat_rendering: bool
    fingerprint: bool

    @classmethod
    def of(cls, model: object) -> Capabilities:
        """The capabilities of ``model`` (an isinstance check per protocol)."""
        return cls(
            token_scores=isinstance(model, TokenScorer),
            batch_generate=isinstance(model, BatchGenerator),
            batch_chat=isinstance(model, BatchChat),
            chat_rendering=isinstance(model, ChatRenderer),
            fingerprint=isinstance(model, Fingerprintable),
        )


def image_token_of(model: object) -> str | None:
    """The model's image placeholder token where it renders its own chats (:class:`ChatRenderer`), else
    ``None`` (a text-only or remote model has none)."""
    return model.image_token if isinstance(model, ChatRenderer) else None

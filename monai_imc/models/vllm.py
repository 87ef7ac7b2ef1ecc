"""The answer over a vLLM server, from IMC's calibrated image features sent as image embeddings.

Many app workers can share one GPU server: each worker keeps the vision tower and the projector (encode,
perceive, calibrate run locally, on the tower's tokens), projects the calibrated tokens with the model's
own projector, and sends the result to a vLLM OpenAI-compatible server as *image embeddings* (vLLM's
multimodal embedding input), so the language model answers from the calibrated features.

vLLM's documented schema (``docs/features/multimodal_inputs.md``, "Embedding Inputs", vLLM >= 0.11):

- the server runs with ``--enable-mm-embeds`` (e.g.
  ``vllm serve Qwen/Qwen2.5-VL-7B-Instruct --enable-mm-embeds --limit-mm-per-prompt '{"image": 4}'``);
- a chat message's content holds one part ``{"type": "image_embeds", "image_embeds": B64}`` per image, where
  ``B64`` is a tensor saved with ``torch.save`` and base64-encoded (vLLM's ``tensor2base64``); Qwen2-VL
  and Qwen2.5-VL take ``{"image_embeds": B64, "image_grid_thw": B64}`` instead;
- the tensor is the language model's input: ``(feature_size, hidden_size of the LM)`` per image, or
  ``(1, feature_size, hidden_size)`` when the request has a single image.

:func:`chat_request` builds such a request, :func:`check_chat_request` validates one against that schema
(the tests run it, and so can a deployment before sending), :class:`VLLMEmbedsModel` answers with it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import torch

from monai_imc.models.base import VisionFeatures
from monai_imc.models.remote import RemoteModel, RemoteModelError

__all__ = [
    "EMBEDS_FLAG",
    "VLLMEmbedsModel",
    "chat_request",
    "check_chat_request",
    "decode_tensor",
    "encode_tensor",
    "image_embeds_parts",
]

EMBEDS_FLAG = "--enable-mm-embeds"
"""The ``vllm serve`` flag that enables image-embedding inputs."""

_GRID_FAMILIES = ("qwen2_vl", "qwen2_5_vl")


def encode_tensor(tensor: torch.Tensor) -> str:
    """A tensor as vLLM reads it: ``torch.save`` bytes, base64 (vLLM's ``tensor2base64``)."""
    buffer = io.BytesIO()
    torch.save(tensor.detach().cpu().contiguous(), buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_tensor(text: str) -> torch.Tensor:
    """The tensor of :func:`encode_tensor` (loaded with ``weights_only=True``: data, never code).

    Raises:
        ValueError: ``text`` is not a base64 ``torch.save`` of one tensor.
    """
    try:
        value = torch.load(io.BytesIO(base64.b64decode(text, validate=True)), weights_only=True)
    except Exception as error:
        raise ValueError(f"not a base64-encoded torch tensor: {type(error).__name__}: {error}") from error
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"the base64 payload holds a {type(value).__name__}, not a tensor")  # noqa: TRY004
    return value


def image_embeds_parts(model: Any, features: VisionFeatures) -> list[dict[str, Any]]:
    """One ``image_embeds`` content part per image: the features through the model's own projector.

    Args:
        model: the local adapter (:class:`~monai_imc.models.hf.HFVisionLanguageModel`) that made the
            features; its projector maps them into the language model's input space.
        features: the (calibrated) features of the images.

    Returns:
        The content parts, in image order.
    """
    model.check_features(features)
    with torch.inference_mode():
        projected = [p.float().cpu() for p in model._project(features)]
    single = len(projected) == 1
    parts = []
    for index, embeds in enumerate(projected):
        tensor = embeds.unsqueeze(0) if single else embeds
        if features.family in _GRID_FAMILIES:
            grid = features.image_grid_thw[index : index + 1].cpu()  # type: ignore[index]
            value: Any = {"image_embeds": encode_tensor(tensor), "image_grid_thw": encode_tensor(grid)}
        else:
            value = encode_tensor(tensor)
        parts.append({"type": "image_embeds", "image_embeds": value})
    return parts


def chat_request(
    model_name: str, parts: Sequence[dict[str, Any]], question: str, **gen: Any
) -> dict[str, Any]:
    """A ``/v1/chat/completions`` request: the image parts, then the question as a text part.

    Args:
        model_name: the served model's name.
        parts: from :func:`image_embeds_parts`.
        question: the (refined) question.
        **gen: request fields (``max_tokens``; ``max_new_tokens`` is accepted; greedy by default).
    """
    content = [*parts, {"type": "text", "text": question}]
    return {"model": model_name, "messages": [{"role": "user", "content": content}], **RemoteModel._gen(gen)}


def check_chat_request(payload: dict[str, Any], hidden_size: int | None = None) -> list[tuple[int, ...]]:
    """Validate a chat request with image embeddings against vLLM's documented schema.

    Args:
        payload: the request.
        hidden_size: the language model's hidden size, when known (the embeddings' last dimension).

    Returns:
        The shape of each image's embedding tensor, in order.

    Raises:
        ValueError: the request breaks the schema (the message names the part and the problem).
    """
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        raise ValueError("the request names no model")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("the request has no messages")
    shapes: list[tuple[int, ...]] = []
    tensors = []
    for m, message in enumerate(messages):
        if message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{m}]: unknown role {message.get('role')!r}")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise ValueError(f"messages[{m}].content must be a string or a list of parts")  # noqa: TRY004
        for p, part in enumerate(content):
            where = f"messages[{m}].content[{p}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise ValueError(f"{where}: a text part needs a string 'text'")
            elif kind == "image_embeds":
                value = part.get("image_embeds")
                if isinstance(value, dict):
                    if "image_embeds" not in value:
                        raise ValueError(f"{where}: the dict form needs 'image_embeds'")
                    extra = set(value) - {"image_embeds", "image_grid_thw", "image_sizes"}
                    if extra:
                        raise ValueError(f"{where}: unknown fields {sorted(extra)}")
                    for name in set(value) - {"image_embeds"}:
                        decode_tensor(value[name])
                    value = value["image_embeds"]
                if not isinstance(value, str):
                    raise ValueError(f"{where}: image_embeds must be a base64 string (or the dict form)")
                tensors.append((where, decode_tensor(value)))
            else:
                raise ValueError(f"{where}: unsupported content type {kind!r}")
    single = len(tensors) == 1
    for where, tensor in tensors:
        wanted = 3 if single else 2
        if tensor.dim() != wanted or (single and tensor.shape[0] != 1):
            form = "(1, feature_size, hidden_size)" if single else "(feature_size, hidden_size)"
            raise ValueError(f"{where}: embeddings of shape {tuple(tensor.shape)}; vLLM expects {form}")
        if hidden_size is not None and tensor.shape[-1] != hidden_size:
            raise ValueError(
                f"{where}: hidden size {tensor.shape[-1]}, the language model's is {hidden_size}"
            )
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{where}: the embeddings hold NaN or infinite values")
        shapes.append(tuple(tensor.shape))
    return shapes


class VLLMEmbedsModel:
    """Encode locally, answer on a vLLM server from the (calibrated) features' image embeddings.

    ``encode_images`` is the local model's (so the perceiver, the calibrator and the prototype bank see
    the same tokens as with the local model); ``generate`` projects the features it is given with the
    local projector and asks the server. Text calls (``chat``, ``log_likelihood``) go to the server.

    Args:
        local: the local adapter (its vision tower and projector are used).
        server: the vLLM server, e.g. ``RemoteModel("http://gpu-node-3:8000")``.

    Example::

        model = VLLMEmbedsModel(load_model(path), RemoteModel("http://gpu-node-3:8000"))
        pipeline = IMCPipeline(model, bank, check_bank=False)
    """

    def __init__(self, local: Any, server: RemoteModel) -> None:
        self.local = local
        self.server = server
        self.family = local.family

    @property
    def name(self) -> str:
        """The local checkpoint's name (the prototype bank is the local tower's)."""
        return str(self.local.name)

    def encode_images(self, images: Any) -> VisionFeatures:
        """The local vision pass."""
        return self.local.encode_images(images)

    def request(self, features: VisionFeatures, prompt: str, **gen: Any) -> dict[str, Any]:
        """The chat request :meth:`generate` sends (validated)."""
        payload = chat_request(self.server.name, image_embeds_parts(self.local, features), prompt, **gen)
        check_chat_request(payload)
        return payload

    def generate(self, features: VisionFeatures, prompt: str, **gen: Any) -> str:
        """The server's answer to ``prompt`` about the images behind ``features``.

        Raises:
            RemoteModelError: the server is unreachable or answers badly.
        """
        body = self.server._request("POST", "/v1/chat/completions", self.request(features, prompt, **gen))
        try:
            return str(body["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as error:
            raise RemoteModelError(f"Malformed chat completion: {body!r}", self.server.base_url) from error

    def chat(self, messages: Any, **gen: Any) -> str:
        """A text chat turn on the server."""
        return self.server.chat(messages, **gen)

    def log_likelihood(self, text: str, context: str = "") -> float:
        """The server's log-likelihood of ``text`` after ``context``."""
        return self.server.log_likelihood(text, context)

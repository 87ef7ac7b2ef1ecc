"""The text half of :class:`~monai_imc.models.base.VisionLanguageModel` over an OpenAI-compatible server.

On a cluster, the MLLM runs under vLLM on GPU nodes (``vllm serve <checkpoint>``) and the SMS text agents
call it over HTTP: ``chat`` through ``/v1/chat/completions``, ``log_likelihood`` through
``/v1/completions`` with ``echo`` and ``logprobs`` (the prompt's own token log-probabilities).
Image features stay local: perceiving and calibrating need the vision tower's tokens, which the
OpenAI API does not expose, so :meth:`RemoteModel.encode_images` and :meth:`RemoteModel.generate` raise.

Only the standard library is used (``urllib``), with timeouts and bounded retries with backoff.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from monai_imc.models.base import ImageInput, Message, VisionFeatures

logger = logging.getLogger(__name__)

__all__ = ["RemoteModel", "RemoteModelError"]

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class RemoteModelError(RuntimeError):
    """The server could not be reached, or answered with an error or a malformed body.

    Attributes:
        url: the URL of the failed request.
    """

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class RemoteModel:
    """Chat and log-likelihood against an OpenAI-compatible server (vLLM).

    Args:
        base_url: server root, e.g. ``"http://gpu-node-3:8000"`` (a trailing ``/v1`` is accepted).
        model: the served model name; default: the first one ``/v1/models`` lists.
        timeout: seconds per request.
        max_retries: retries after the first attempt, on connection errors, timeouts and HTTP 408/429/5xx.
        backoff: seconds before the first retry; doubled at each further retry.
        api_key: sent as ``Authorization: Bearer <api_key>`` when given.

    Example:
        >>> model = RemoteModel("http://gpu-node-3:8000", model="lingshu-7b")  # doctest: +SKIP
        >>> model.chat([{"role": "user", "content": "Expand: RLL."}])  # doctest: +SKIP
        >>> model.log_likelihood(" no effusion.", context="Findings:")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        api_key: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}.")
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix("/v1")
        self._model = model
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self._api_key = api_key

    @property
    def name(self) -> str:
        """The served model's name (asked from ``/v1/models`` on first use when not given)."""
        if self._model is None:
            listing = self._request("GET", "/v1/models")
            try:
                self._model = str(listing["data"][0]["id"])
            except (KeyError, IndexError, TypeError) as error:
                raise RemoteModelError(
                    f"{self.base_url}/v1/models lists no model: {listing!r}", self.base_url + "/v1/models"
                ) from error
        return self._model

    def __repr__(self) -> str:
        return f"RemoteModel(base_url={self.base_url!r}, model={self._model!r})"

    # ------------------------------------------------------------------ protocol
    def chat(self, messages: Sequence[Message], **gen: Any) -> str:
        """A chat turn through ``/v1/chat/completions``.

        Args:
            messages: OpenAI-style messages.
            **gen: request fields; defaults ``max_tokens=128`` (``max_new_tokens`` is accepted as an
                alias), ``temperature=0``.

        Returns:
            The assistant's reply.

        Raises:
            ValueError: if ``messages`` is empty.
            RemoteModelError: if the server is unreachable or answers badly.
        """
        if not messages:
            raise ValueError("messages is empty.")
        payload = {"model": self.name, "messages": list(messages), **self._gen(gen)}
        body = self._request("POST", "/v1/chat/completions", payload)
        try:
            return str(body["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as error:
            raise RemoteModelError(
                f"Malformed chat completion from {self.base_url}: {body!r}", self.base_url
            ) from error

    def log_likelihood(self, text: str, context: str = "") -> float:
        """Sum of the prompt log-probabilities of the tokens of ``text`` after ``context``.

        Sends ``context + text`` to ``/v1/completions`` with ``echo: true``, ``logprobs: 1`` and
        ``max_tokens: 1``, keeps the ``usage.prompt_tokens`` prompt tokens, and sums those that end within
        the last ``len(text)`` characters (the same rule as the local adapter; the first token of the
        sequence has no log-probability).

        Args:
            text: the continuation to score; must not be empty.
            context: what precedes it.

        Returns:
            The summed natural-log probability.

        Raises:
            ValueError: if ``text`` is empty.
            RemoteModelError: if the server is unreachable or its answer lacks prompt log-probabilities.
        """
        if not text:
            raise ValueError("text is empty; there is nothing to score.")
        payload = {
            "model": self.name,
            "prompt": context + text,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        }
        url = self.base_url + "/v1/completions"
        body = self._request("POST", "/v1/completions", payload)
        try:
            logprobs = body["choices"][0]["logprobs"]
            n_prompt = int(body["usage"]["prompt_tokens"])
            tokens = list(logprobs["tokens"])[:n_prompt]
            values = list(logprobs["token_logprobs"])[:n_prompt]
            offsets = list(logprobs["text_offset"])[:n_prompt]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise RemoteModelError(
                f"{url} returned no prompt logprobs (does the server support echo with logprobs?): {body!r}",
                url,
            ) from error
        if not tokens:
            raise RemoteModelError(f"{url} echoed no prompt tokens: {body!r}", url)
        total = int(offsets[-1]) + len(tokens[-1])
        boundary = total - len(text)
        score = 0.0
        for token, value, start in zip(tokens, values, offsets):
            if value is not None and int(start) + len(token) > boundary:
                score += float(value)
        return score

    def encode_images(self, images: ImageInput | Sequence[ImageInput]) -> VisionFeatures:
        """Not available remotely: vision features stay local.

        Raises:
            NotImplementedError: always; load the checkpoint locally with :func:`monai_imc.models.load_model`.
        """
        raise NotImplementedError(
            f"RemoteModel ({self.base_url}) serves text only (chat, log_likelihood); image features stay "
            "local: load the checkpoint with monai_imc.models.load_model(...) to encode images."
        )

    def generate(self, features: VisionFeatures, prompt: str, **gen: Any) -> str:
        """Not available remotely: answering from (calibrated) features needs the local model.

        Raises:
            NotImplementedError: always; use the local adapter's ``generate``.
        """
        raise NotImplementedError(
            f"RemoteModel ({self.base_url}) cannot generate from vision features; the OpenAI API takes no "
            "pre-projector tokens. Use the local adapter from monai_imc.models.load_model(...)."
        )

    # ------------------------------------------------------------------ HTTP
    @staticmethod
    def _gen(gen: dict[str, Any]) -> dict[str, Any]:
        gen = dict(gen)
        if "max_new_tokens" in gen:
            gen["max_tokens"] = gen.pop("max_new_tokens")
        if gen.pop("do_sample", False) is False:
            gen.setdefault("temperature", 0.0)
        out: dict[str, Any] = {"max_tokens": 128, "temperature": 0.0}
        out.update(gen)
        return out

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """Send one JSON request with retries; return the decoded JSON body."""
        url = self.base_url + path
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempts = self.max_retries + 1
        last: str = ""
        for attempt in range(attempts):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                logger.warning(
                    "Retrying %s in %.2fs (attempt %d of %d): %s", url, delay, attempt + 1, attempts, last
                )
                time.sleep(delay)
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as error:
                detail = error.read()[:500].decode(errors="replace")
                last = f"HTTP {error.code}: {detail}"
                if error.code in _RETRY_STATUS:
                    continue
                raise RemoteModelError(f"{method} {url} failed with {last}", url) from error
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
                last = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
                continue
            try:
                return json.loads(raw)
            except json.JSONDecodeError as error:
                raise RemoteModelError(f"{method} {url} returned invalid JSON: {raw[:200]!r}", url) from error
        raise RemoteModelError(
            f"Cannot reach the model server at {url} after {attempts} attempt(s) "
            f"(timeout {self.timeout:g}s): {last}",
            url,
        )

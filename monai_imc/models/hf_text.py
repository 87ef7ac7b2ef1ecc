"""The text half of the HF adapters: batched answers, token scores, text chat and its rendering.

A mixin of :class:`~monai_imc.models.hf_core.HFVisionLanguageModel`: the methods use its ``model``,
``processor``, ``tokenizer``, prompt building and feature checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from monai_imc.models.base import Message, VisionFeatures
from monai_imc.models.hf_inputs import Generation, _merge_features

__all__ = ["HFTextMixin"]


class HFTextMixin:
    """Batched generation, log-likelihoods, prompt log-probabilities, chat and chat rendering."""

    # provided by HFVisionLanguageModel
    model: Any
    processor: Any
    tokenizer: Any
    chat_template: Any
    image_token: str
    _lock: Any  # calls that run the projector (answers about images)
    _text_lock: Any  # text-only calls

    def _left_pad(self, encoded: Sequence[dict[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], int]:
        """One left-padded batch of single-row text inputs, and the pad id (the EOS where there is none)."""
        width = max(int(e["input_ids"].shape[1]) for e in encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        batch = {
            key: torch.cat(
                [
                    nn.functional.pad(e[key], (width - int(e[key].shape[1]), 0), value=pad if key == "input_ids" else 0)
                    for e in encoded
                ]
            )
            for key in encoded[0]
        }
        return batch, int(pad)

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
        encoded = [
            self.text_inputs(self.build_prompt(p, f.num_images), f.placeholders)
            for f, p in zip(features, prompts)
        ]
        batch, pad = self._left_pad(encoded)
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
        new = out.sequences[:, batch["input_ids"].shape[1] :].cpu()
        logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1).cpu()
        picked = logprobs.gather(-1, new[..., None])[..., 0]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        results = []
        for row, scores in zip(new.tolist(), picked.tolist()):
            stop = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
            results.append(
                Generation(
                    text=self.tokenizer.decode(row[:stop], skip_special_tokens=True).strip(),
                    probability=float(np.exp(sum(scores[:stop]))),
                )
            )
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
        for start in range(0, len(texts), batch_size):
            encs, picked = self._picked_logprobs([context + t for t in texts[start : start + batch_size]])
            for row, e in enumerate(encs):
                ends = [int(end) for _s, end in e["offset_mapping"]]
                scores.append(
                    float(sum(picked[row, k - 1] for k in range(1, len(ends)) if ends[k] > boundary))
                )
        return scores

    def _picked_logprobs(self, prompts: Sequence[str]) -> tuple[list[Any], torch.Tensor]:
        """One forward pass over ``prompts``, right-padded (a causal model's logits at a prompt's own positions
        do not see the padding): each prompt's encoding (with offsets) and ``(n, width - 1)`` log-probabilities
        of every token after the first, on the CPU."""
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id or 0
        encs = [self.tokenizer(p, return_offsets_mapping=True) for p in prompts]
        width = max(len(e["input_ids"]) for e in encs)
        ids = torch.full((len(encs), width), int(pad_id), dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for row, e in enumerate(encs):
            ids[row, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
            mask[row, : len(e["input_ids"])] = 1
        with self._text_lock, torch.no_grad():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        return encs, logprobs.gather(-1, ids[:, 1:, None].to(logprobs.device))[..., 0].cpu()

    def prompt_logprobs(self, prompt: str) -> list[tuple[str, float | None, int, int]]:
        """Per-token log-probabilities of a prompt, as a completion server reports them with ``echo``.

        Args:
            prompt: the text (tokenised with the tokenizer's special tokens, e.g. BOS).

        Returns:
            One ``(token_text, logprob, start, end)`` per token; ``logprob`` is ``None`` for the first
            token; ``start``/``end`` are character offsets into ``prompt`` (``0, 0`` for special tokens).
        """
        return self.prompt_logprobs_many([prompt])[0]

    def prompt_logprobs_many(
        self, prompts: Sequence[str], batch_size: int = 16
    ) -> list[list[tuple[str, float | None, int, int]]]:
        """:meth:`prompt_logprobs` of each prompt, ``batch_size`` prompts a forward pass."""
        out: list[list[tuple[str, float | None, int, int]]] = []
        for start in range(0, len(prompts), batch_size):
            encs, picked = self._picked_logprobs(prompts[start : start + batch_size])
            for row, e in enumerate(encs):
                n = len(e["input_ids"])
                values: list[float | None] = [None, *picked[row, : n - 1].tolist()]
                tokens = [self.tokenizer.decode([i]) for i in e["input_ids"]]
                offsets = [(int(a), int(b)) for a, b in e["offset_mapping"]]
                out.append([(t, v, a, b) for t, v, (a, b) in zip(tokens, values, offsets)])
        return out

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
        with self._text_lock, torch.no_grad():
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
        encoded = [
            self.text_inputs(self.render_chat(m, add_generation_prompt=True), ()) for m in conversations
        ]
        batch, pad = self._left_pad(encoded)
        options = self._gen_defaults(gen)
        options["pad_token_id"] = pad
        with self._text_lock, torch.no_grad():
            out = self.model.generate(**batch, **options)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in out[:, batch["input_ids"].shape[1] :]]

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

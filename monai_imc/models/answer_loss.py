"""A LLaVA's answer objective on given vision features: padding, the projected image tokens as
``mm_encoder_outputs``, the answer loss and the greedy match. Its callers: the reference recipe's training
(:mod:`monai_imc.reference.train`, which also picks its saved step by the match) and PDC's maps fitted on the
answers (:mod:`monai_imc.answer_maps`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["answer_forward", "pad_examples", "projected_tokens"]


def pad_examples(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad (prompt, target) id lists into input_ids / attention_mask / labels (prompt masked)."""
    length = max(len(p) + len(t) for p, t in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    labels = torch.full((len(sequences), length), -100, dtype=torch.long)
    for i, (p, t) in enumerate(sequences):
        n = len(p) + len(t)
        ids[i, :n] = torch.tensor(p + t)
        mask[i, :n] = 1
        labels[i, len(p) : n] = torch.tensor(t)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def projected_tokens(
    model: Any, feats: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> dict[str, Any]:
    """``mm_encoder_outputs`` for ``forward``: the projected tokens of each image of the batch (``project``:
    what turns ``feats`` into the language model's image tokens; default the model's projector)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    projected = (project or model.model.multi_modal_projector)(feats)
    return {"image": BaseModelOutputWithPooling(pooler_output=list(projected.unbind(0)))}


def answer_forward(
    model: Any,
    items: list[tuple[int, list[int], list[int]]],
    feats: torch.Tensor,
    pad_id: int,
    per_example: bool = False,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The answer loss of ``items`` and, per item, whether greedy decoding would give its answer exactly.

    The loss is the cross-entropy of the answer tokens: the mean over all of the batch's answer tokens, or
    with ``per_example`` the mean over the questions of each one's mean (a one-word answer weighs as much
    as a long one). An answer is matched when every answer token (its end included) is the most likely
    one after the true prefix: exactly when greedy decoding writes that answer, at the cost of one forward.
    ``project`` turns ``feats`` into image tokens (default the model's projector; PDC's answer-fitted maps
    pass features of the projector's reading space, :mod:`monai_imc.answer_maps`).
    """
    batch = {k: v.to(feats.device) for k, v in pad_examples([(p, t) for _, p, t in items], pad_id).items()}
    img = torch.tensor([i for i, _, _ in items], device=feats.device)
    labels = batch.pop("labels")
    logits = model(**batch, mm_encoder_outputs=projected_tokens(model, feats[img], project)).logits[:, :-1]
    target = labels[:, 1:]
    counted = target != -100
    token = nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
    if per_example:
        loss = ((token * counted).sum(1) / counted.sum(1).clamp(min=1)).mean()
    else:
        loss = token.sum() / counted.sum().clamp(min=1)
    matched = ((logits.argmax(-1) == target) | ~counted).all(1)
    return loss, matched

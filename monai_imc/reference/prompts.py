"""The role prompts, re-exported: they live in :mod:`monai_imc.prompts` (the library's, which the reference
model is trained on)."""

from __future__ import annotations

from monai_imc.prompts import (
    CLEAN_LABEL,
    CLOSE_QUOTE,
    JUDGE_LABELS,
    JUDGE_TEMPLATE,
    OPEN_QUOTE,
    REWRITE_TEMPLATE,
    judge_messages,
    judge_prompt,
    parse_judgement,
    quote,
    rewrite_messages,
    rewrite_prompt,
    vqa_prompt,
)

__all__ = [
    "CLEAN_LABEL",
    "CLOSE_QUOTE",
    "JUDGE_LABELS",
    "JUDGE_TEMPLATE",
    "OPEN_QUOTE",
    "REWRITE_TEMPLATE",
    "judge_messages",
    "judge_prompt",
    "parse_judgement",
    "quote",
    "rewrite_messages",
    "rewrite_prompt",
    "vqa_prompt",
]

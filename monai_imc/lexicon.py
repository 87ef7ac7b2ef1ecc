"""Words a clinical question turns on: negation and laterality, with their usual shorthand.

The text noises never remove or invert these facts (abbreviations keep them: ``left`` may become ``lt``),
so every corrupted question stays answerable; the SMS guards use the same lexicon to check that a repair
keeps them too.
"""

from __future__ import annotations

import re

__all__ = ["NEGATION", "LATERALITY", "NUMBER_PATTERN", "is_protected_word"]

NEGATION: frozenset[str] = frozenset(
    {"no", "not", "non", "none", "nor", "neither", "never", "without", "w/o", "absent", "negative", "denies",
     "cannot", "isn't", "aren't", "doesn't", "don't", "didn't", "wasn't", "weren't", "n't"}
)
"""Negation cues, lower case."""

LATERALITY: frozenset[str] = frozenset(
    {"left", "right", "lt", "rt", "l", "r", "bilateral", "b/l", "unilateral", "ipsilateral", "contralateral",
     "leftmost", "rightmost", "lateral", "medial"}
)
"""Laterality cues, lower case."""

NUMBER_PATTERN = re.compile(r"\d+(?:[.,]\d+)*")
"""A number as written in clinical text (``3``, ``2.5``, ``1,200``)."""


def is_protected_word(word: str) -> bool:
    """True for a negation or laterality word, or any token that holds a digit."""
    lowered = word.lower()
    return lowered in NEGATION or lowered in LATERALITY or any(ch.isdigit() for ch in word)

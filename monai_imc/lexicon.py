"""Words a clinical question turns on: negation, laterality, numbers and units, with their usual shorthand.

The text noises never remove or invert these facts (abbreviations keep them: ``left`` may become ``lt``),
so every corrupted question stays answerable; the SMS guards use the same lexicon to check that a repair
keeps them too.
"""

from __future__ import annotations

import re

__all__ = ["LATERALITY", "NEGATION", "NUMBER_PATTERN", "UNITS", "is_protected_word", "numbers"]

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

UNITS: frozenset[str] = frozenset({"mm", "cm", "m", "ml", "cc", "l", "mg", "g", "kg", "hu", "sec", "min", "mmhg"})
"""Units of measurement that follow numbers, lower case."""

NUMBER_PATTERN = re.compile(
    r"(?<![A-Za-z\d.,])\d+(?:[.,]\d+)*(?=(?:mm|cm|ml|mg|kg|cc|m|g|l|%|x)?(?![A-Za-z\d]))", re.IGNORECASE
)
"""A number as written in clinical text (``3``, ``2.5``, ``1,200``, ``3cm``, ``50%``); a digit inside a word
(``1ung``, ``I5``: OCR misreadings) is not a number."""


def is_protected_word(word: str) -> bool:
    """True for a negation, laterality or unit word, or any token that holds a digit."""
    lowered = word.lower()
    return lowered in NEGATION or lowered in LATERALITY or lowered in UNITS or any(ch.isdigit() for ch in word)


def numbers(text: str) -> list[str]:
    """The numbers in ``text``, in order (see :data:`NUMBER_PATTERN`)."""
    return NUMBER_PATTERN.findall(text)

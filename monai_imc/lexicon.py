"""Words a clinical question turns on: negation, laterality, numbers (digits and number words) and units,
with their usual shorthand.

The text noises never remove or invert these facts (abbreviations keep them: ``left`` may become ``lt``),
so every corrupted question stays answerable; the SMS guards use the same lexicon to check that a repair
keeps them too.
"""

from __future__ import annotations

import re

__all__ = [
    "LATERALITY",
    "NEGATION",
    "NUMBER_PATTERN",
    "NUMBER_WORDS",
    "OCR_DIGIT_LOOKALIKES",
    "UNITS",
    "is_protected_word",
    "looks_misread",
    "number_words",
    "numbers",
]

NEGATION: frozenset[str] = frozenset(
    {
        "no",
        "not",
        "non",
        "none",
        "nor",
        "neither",
        "never",
        "without",
        "w/o",
        "absent",
        "negative",
        "denies",
        "cannot",
        "isn't",
        "aren't",
        "doesn't",
        "don't",
        "didn't",
        "wasn't",
        "weren't",
        "n't",
    }
)
"""Negation cues, lower case."""

LATERALITY: frozenset[str] = frozenset(
    {
        "left",
        "right",
        "lt",
        "rt",
        "l",
        "r",
        "bilateral",
        "b/l",
        "unilateral",
        "ipsilateral",
        "contralateral",
        "leftmost",
        "rightmost",
        "lateral",
        "medial",
    }
)
"""Laterality cues, lower case."""

UNITS: frozenset[str] = frozenset(
    {"mm", "cm", "m", "ml", "cc", "l", "mg", "g", "kg", "hu", "sec", "min", "mmhg"}
)
"""Units of measurement that follow numbers, lower case."""

NUMBER_WORDS: frozenset[str] = frozenset(
    {
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "once",
        "twice",
        "thrice",
        "single",
        "double",
        "triple",
        "quadruple",
        "multiple",
        "solitary",
        "both",
        "half",
        "pair",
        "dozen",
        "singular",
        "unilateral",
        "bilateral",
        "multifocal",
        "unifocal",
    }
)
"""Number words and counting words (``three``, ``second``, ``single``, ``bilateral``), lower case: a repair may
not change how many of something a text speaks of."""

NUMBER_PATTERN = re.compile(
    r"(?<![A-Za-z\d.,])\d+(?:[.,]\d+)*(?=(?:mm|cm|ml|mg|kg|cc|m|g|l|%|x)?(?![A-Za-z\d]))", re.IGNORECASE
)
"""A number as written in clinical text (``3``, ``2.5``, ``1,200``, ``3cm``, ``50%``); a digit inside a word
(``1ung``, ``I5``: OCR misreadings) is not a number."""


OCR_DIGIT_LOOKALIKES: dict[str, str] = {"0": "o", "1": "li", "2": "z", "5": "s", "6": "b", "8": "b"}
"""The letters each digit is the optical look-alike of (``0``/``o``, ``1``/``l``/``i``, ``5``/``s`` ...)."""

_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)", re.IGNORECASE)
_CODE = re.compile(r"[A-Z][A-Za-z]?\d+[A-Za-z]?")  # T2, L4, C5, Th12, T2W, D3, B12, I5: never read as letters


def looks_misread(token: str) -> bool:
    """Whether ``token`` is a word whose letters optical recognition misread as digits (``1ung``, ``th1s``,
    ``n0rmal``): letters and digits mixed, every digit the look-alike of a letter (:data:`OCR_DIGIT_LOOKALIKES`),
    and not a number (``3cm``, ``50%``), an ordinal (``2nd``) or a code (``T2``, ``L4``, ``C5``, ``B12``:
    an upper-case letter or two, digits, at most one letter). Such a token holds no number to keep."""
    if not any(ch.isalpha() for ch in token) or not any(ch.isdigit() for ch in token):
        return False
    if not all(ch.isalpha() or ch in OCR_DIGIT_LOOKALIKES for ch in token):
        return False
    return not (NUMBER_PATTERN.search(token) or _ORDINAL.fullmatch(token) or _CODE.fullmatch(token))


def is_protected_word(word: str) -> bool:
    """True for a negation, laterality, number or unit word, or any token that holds a digit, unless the digit
    is a misread letter (:func:`looks_misread`: ``1ung``)."""
    lowered = word.lower()
    return (
        lowered in NEGATION
        or lowered in LATERALITY
        or lowered in UNITS
        or lowered in NUMBER_WORDS
        or (any(ch.isdigit() for ch in word) and not looks_misread(word))
    )


def number_words(text: str) -> list[str]:
    """The number words of ``text`` (:data:`NUMBER_WORDS`), lower case, in order."""
    return [w for w in (m.lower() for m in re.findall(r"[A-Za-z]+", text)) if w in NUMBER_WORDS]


def numbers(text: str) -> list[str]:
    """The numbers in ``text``, in order (see :data:`NUMBER_PATTERN`)."""
    return NUMBER_PATTERN.findall(text)

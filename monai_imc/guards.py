"""Deterministic guards on text repairs: negation, laterality, numbers, number words, units, question form.

An edit of clinical text may fix spelling, transcription and shorthand; it may never change what the
text says. :func:`check_repair` compares a candidate with the text it repairs and lists every fact that
differs; an empty list means the repair is allowed. The facts come from :mod:`monai_imc.lexicon`, the
same lexicon the text noises protect.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from monai_imc.lexicon import NEGATION, UNITS, number_words, numbers

__all__ = ["AUXILIARIES", "OPENERS", "TextFacts", "check_repair", "question_form", "text_facts"]

QuestionForm = Literal["yes/no", "open", "statement", "unknown"]

_TOKEN = re.compile(r"[A-Za-z]+(?:/[A-Za-z]+)?(?:'[a-z]+)?")
_SIDES = {
    "left": "left",
    "lt": "left",
    "l": "left",
    "leftmost": "left",
    "right": "right",
    "rt": "right",
    "r": "right",
    "rightmost": "right",
    "bilateral": "bilateral",
    "b/l": "bilateral",
    "both": "bilateral",
}
_NEGATION_CANON = {"w/o": "without", "non": "not", "cannot": "not", "n't": "not"}
#: Auxiliaries that open a yes/no question.
AUXILIARIES: frozenset[str] = frozenset({
    "is",
    "are",
    "was",
    "were",
    "does",
    "do",
    "did",
    "can",
    "could",
    "has",
    "have",
    "had",
    "will",
    "would",
    "should",
    "shall",
    "may",
    "might",
    "must",
    "am",
})
_PREPOSITIONS = {"in", "on", "at", "from", "for", "to", "by", "of", "with", "into", "within"}
#: Words that open an open question.
OPENERS: frozenset[str] = frozenset(
    {"what", "which", "where", "how", "why", "who", "whom", "whose", "when", "describe", "name", "list"}
)


@dataclass(frozen=True)
class TextFacts:
    """The facts of a text that a repair must keep.

    Attributes:
        negations: negation cues, canonical form, with counts.
        sides: laterality words as sides (``left``, ``right``, ``bilateral``), with counts.
        numbers: numbers in order (units attached are part of the number's match, see the lexicon).
        number_words: number and counting words in order (``three``, ``second``, ``single``).
        units: unit words standing alone (``cm`` in ``3 cm``), with counts.
        form: ``yes/no``, ``open``, ``statement`` or ``unknown``.
    """

    negations: tuple[tuple[str, int], ...]
    sides: tuple[tuple[str, int], ...]
    numbers: tuple[str, ...]
    form: QuestionForm
    number_words: tuple[str, ...] = ()
    units: tuple[tuple[str, int], ...] = ()


def question_form(text: str) -> QuestionForm:
    """The form of a clinical question: ``yes/no`` (it starts with an auxiliary), ``open`` (a wh-word),
    ``statement`` (no question mark and no question word) or ``unknown`` (a misspelt first word).

    The question is the first sentence that ends with ``?`` (context sentences around it do not count).
    """
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]
    asked = [s for s in sentences if s.strip().endswith("?")]
    words = _TOKEN.findall((asked or sentences or [""])[0])
    if not words:
        return "unknown"
    first = words[0].lower()
    if first in _PREPOSITIONS and len(words) > 1:  # "In which lobe ...?"
        first = words[1].lower()
    if first in AUXILIARIES:
        return "yes/no"
    if first in OPENERS:
        return "open"
    return "unknown" if asked else "statement"


def text_facts(text: str) -> TextFacts:
    """The :class:`TextFacts` of ``text``."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    negations: Counter[str] = Counter()
    for t in tokens:
        if t in NEGATION or t.endswith("n't"):
            negations[_NEGATION_CANON.get(t, "not" if t.endswith("n't") else t)] += 1
    sides = Counter(_SIDES[t] for t in tokens if t in _SIDES)
    return TextFacts(
        negations=tuple(sorted(negations.items())),
        sides=tuple(sorted(sides.items())),
        numbers=tuple(numbers(text)),
        form=question_form(text),
        number_words=tuple(number_words(text)),
        units=tuple(sorted(Counter(t for t in tokens if t in UNITS and t not in _SIDES).items())),
    )


def check_repair(original: str, candidate: str) -> list[str]:
    """The guard violations of replacing ``original`` by ``candidate`` (empty: the repair is allowed).

    A question form the original's misspelt first word hides (``unknown``) may be restored to any
    question form, never turned into a statement. An unchanged text never violates a guard.
    """
    before, after = text_facts(original), text_facts(candidate)
    violations = []
    if before.negations != after.negations:
        violations.append(f"negation changed: {dict(before.negations)} -> {dict(after.negations)}")
    if before.sides != after.sides:
        violations.append(f"laterality changed: {dict(before.sides)} -> {dict(after.sides)}")
    if before.numbers != after.numbers:
        violations.append(f"numbers changed: {list(before.numbers)} -> {list(after.numbers)}")
    if before.number_words != after.number_words:
        violations.append(f"number words changed: {list(before.number_words)} -> {list(after.number_words)}")
    if before.units != after.units:
        violations.append(f"units changed: {dict(before.units)} -> {dict(after.units)}")
    if before.form == "unknown":
        if after.form == "statement":
            violations.append("question form changed: a question became a statement")
    elif before.form != after.form:
        violations.append(f"question form changed: {before.form} -> {after.form}")
    return violations

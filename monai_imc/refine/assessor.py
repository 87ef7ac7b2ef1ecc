"""SMS's lexical assessor: how surprising each word of a text is to the model, and which words are suspects.

Functions of a refiner's vocabulary and thresholds (:class:`Thresholds`: an
:class:`~monai_imc.refine.SMSRefiner` is one), so that calibration, which moves the thresholds, and the loop
read the same words the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Protocol

from monai_imc.model_vocabulary import Vocabulary
from monai_imc.refine.records import Assessment
from monai_imc.text_candidates import KINDS, WORD, is_editable, is_filler, sound_alikes

__all__ = [
    "Thresholds",
    "lexical_assessment",
    "rated_words",
    "sound_alike_words",
    "suspicion_of",
]

_SENTENCES = re.compile(r"(?<=[.?!])\s+(?=\S)")


class Thresholds(Protocol):
    """What the assessor reads of a refiner: its words and the thresholds calibration chooses."""

    vocabulary: Vocabulary | None
    suspicion: float
    sound_alike_suspicion: float
    max_suspects: int

    def is_correct(self, word: str) -> bool: ...


def suspicion_of(
    thresholds: Thresholds, text: str, match: re.Match[str], surprisal: float, index: int
) -> float | None:
    """How suspect the word ``match`` of ``text`` is, on the scale of ``suspicion``: ``None`` when it may not
    be edited (a protected word, a token with a digit, an unknown acronym) or when it is a correct first word
    (its surprisal is the model's doubt about what is asked, not noise); infinite when it is not a correct
    word (an unknown word, a filler) or part of a filler phrase: such a word is always a suspect; else its
    surprisal (nats), raised by ``suspicion - sound_alike_suspicion`` when it reaches ``sound_alike_suspicion``
    and the word sounds like another known word (so it is a suspect from ``sound_alike_suspicion`` on; below,
    where it cannot be a suspect, its sound-alikes are not looked up: a word new to the process takes about
    0.3 ms to look up, a tenth of the assessor's call on the reference model).
    """
    vocabulary = thresholds.vocabulary
    if vocabulary is None or not is_editable(text, match, vocabulary):
        return None
    if not thresholds.is_correct(match.group()) or is_filler(text, match):
        return math.inf
    if index == 0:
        return None
    lower = thresholds.sound_alike_suspicion
    if lower < thresholds.suspicion and surprisal >= lower and sound_alikes(match.group(), vocabulary):
        return surprisal + (thresholds.suspicion - lower)
    return surprisal


def lexical_assessment(
    thresholds: Thresholds, text: str, rows: Sequence[tuple[str, float | None, int, int]], offset: int
) -> Assessment:
    """The assessor's verdict on ``text`` from the token log-probabilities ``rows`` (token, log-probability,
    start, end) of the model's user-turn prefix (``offset`` characters) followed by ``text``."""
    total = float(sum(lp for _t, lp, _s, e in rows if lp is not None and e > offset))
    words = []
    for m in WORD.finditer(text):
        a, b = m.start() + offset, m.end() + offset
        words.append((m, -float(sum(lp for _t, lp, s, e in rows if lp is not None and e > a and s < b))))
    scored = [(m, suspicion_of(thresholds, text, m, v, i)) for i, (m, v) in enumerate(words)]
    ranked = sorted(((m, v) for m, v in scored if v is not None), key=lambda w: -w[1])
    suspects = [w for w in ranked[: thresholds.max_suspects] if w[1] >= thresholds.suspicion]
    kinds: list[str] = []
    for m, _s in suspects:
        if is_filler(text, m):
            kinds += ["recognition"]
        else:
            kinds += ["recognition"] if thresholds.is_correct(m.group()) else ["spelling", "terminology"]
    if len(_SENTENCES.split(text.strip())) > 1:
        kinds.append("distractor")
    kinds = [k for k in KINDS if k in kinds]
    surprisal = tuple((m.group(), round(v, 3)) for m, v in words)
    raw = {m.start(): v for m, v in words}
    summary = ", ".join(f"{m.group()} {raw[m.start()]:.1f}" for m, _v in ranked[: thresholds.max_suspects])
    return Assessment(
        bool(kinds),
        tuple(kinds),
        tuple((m.start(), m.end()) for m, _ in suspects),
        surprisal,
        total,
        f"most surprising: {summary}",
    )


def rated_words(
    thresholds: Thresholds, text: str, assessment: Assessment
) -> Iterator[tuple[re.Match[str], float, float | None]]:
    """Each word of ``text`` with its surprisal (nats, from its lexical ``assessment``) and
    :func:`suspicion_of` it."""
    for i, (m, (_w, v)) in enumerate(zip(WORD.finditer(text), assessment.surprisal)):
        yield m, v, suspicion_of(thresholds, text, m, v, i)


def sound_alike_words(
    thresholds: Thresholds, text: str, assessment: Assessment, floor: float = -math.inf
) -> Iterator[tuple[re.Match[str], float]]:
    """The words of ``text`` that ``sound_alike_suspicion`` applies to, with their surprisal: a word
    :func:`suspicion_of` rates by its surprisal (correct, editable, not the first) that sounds like another
    known word; only those whose surprisal reaches ``floor``."""
    if thresholds.vocabulary is None:
        return
    for m, v, rated in rated_words(thresholds, text, assessment):
        if (
            rated is not None
            and not math.isinf(rated)
            and v >= floor
            and sound_alikes(m.group(), thresholds.vocabulary)
        ):
            yield m, v

"""The recognition specialist's reading of a whole sentence: speech recognition mishears several words at
once, and each alone barely surprises the model, so the words heard again are composed into one reading.

Functions of a refiner's thresholds (:class:`Readers`: an :class:`~monai_imc.refine.SMSRefiner` is one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monai_imc.refine.assessor import Thresholds, sound_alike_words
from monai_imc.refine.records import Assessment
from monai_imc.text_candidates import WORD, Candidate, apply_candidates

__all__ = ["Readers", "misheard", "readings"]


class Readers(Thresholds, Protocol):
    """What a reading needs of a refiner beyond the assessor's thresholds."""

    accept_margin: float
    reading_suspicion: float

    def margin(self, candidate: Candidate) -> float: ...


def misheard(readers: Readers, text: str, assessment: Assessment) -> list[tuple[int, int]]:
    """Where ``text`` may hold a misheard word: the ``(start, end)`` of every correct word that sounds like
    another known word and whose surprisal reaches ``reading_suspicion`` (the suspects beyond the assessor's
    ``max_suspects`` too), from its lexical ``assessment``."""
    return [
        (m.start(), m.end())
        for m, _v in sound_alike_words(readers, text, assessment, floor=readers.reading_suspicion)
    ]


def readings(
    readers: Readers, text: str, scored: Sequence[tuple[float, Candidate]]
) -> list[tuple[str, float]]:
    """The readings of the whole ``text``: every word heard as a sound-alike whose edit alone gains at least
    ``accept_margin`` (the best one per word; joins of several words are judged alone), with the fillers
    whose drop reaches its own margin, composed into one text; then that reading with one word's runner-up
    instead, for each word that has one (a word's best edit alone, in the noisy sentence, may not be its
    best among the other words read again: ``lever`` -> ``level`` beside ``pitcher``, ``liver`` beside
    ``picture``). ``scored`` holds each single edit's gain (nats).

    Returns each text with what it must gain beyond ``reading_margin``: the gains of its edits that are not
    sound-alikes (each already paid its own margin), so that a sound-alike never rides on another edit's
    gain; nothing when fewer than two words are heard again (one is judged alone, by
    ``sound_alike_margin``). The margin is calibrated on the readings of clean text
    (:func:`~monai_imc.refine.calibrate`).
    """
    heard: dict[tuple[int, int], list[tuple[float, Candidate]]] = {}
    others: list[tuple[float, Candidate]] = []
    for gain, c in sorted(scored, key=lambda x: -x[0]):
        if c.kind != "recognition" or gain <= 0.0:
            continue
        if c.tier == "unknown":  # a filler dropped: in the reading when it reaches its own margin
            if gain >= readers.margin(c):
                others.append((gain, c))
        elif c.tier != "sound-alike":
            continue  # a correct word into another word is judged alone, by the overwhelming margin
        elif len(WORD.findall(c.before)) == 1 and gain >= readers.accept_margin:
            # a word heard again gains, alone, what an unknown word's edit must; a join of several words is
            # judged alone
            heard.setdefault((c.start, c.end), []).append((gain, c))
    best = {place: options[0] for place, options in heard.items()}

    def compose(picked: dict[tuple[int, int], tuple[float, Candidate]]) -> tuple[str, float] | None:
        chosen: list[tuple[float, Candidate]] = []
        for gain, c in sorted([*picked.values(), *others], key=lambda x: -x[0]):
            if all(c.end <= o.start or c.start >= o.end for _g, o in chosen):
                chosen.append((gain, c))
        if sum(c.tier == "sound-alike" for _g, c in chosen) < 2:
            return None
        extra = sum(g for g, c in chosen if c.tier != "sound-alike")
        return apply_candidates(text, [c for _g, c in chosen]), extra

    out = [compose(best)] + [
        compose({**best, place: options[1]}) for place, options in heard.items() if len(options) > 1
    ]
    return list(dict.fromkeys(r for r in out if r is not None))

"""Choosing SMS's thresholds on clean held-out text, never test text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from monai_imc.refine.refiner import SMSRefiner
from monai_imc.text_candidates import TIERS

__all__ = ["SMSCalibration", "calibrate"]


@dataclass(frozen=True)
class SMSCalibration:
    """SMS's thresholds and the rates they give on the clean texts they were chosen on.

    Attributes:
        suspicion: the assessor's threshold (nats).
        sound_alike_suspicion: the assessor's threshold for a correct word that sounds like another (nats).
        accept_margin: the gain an edit of an unknown word needs (nats).
        sound_alike_margin: the gain an edit of a correct word into a sound-alike needs (nats).
        known_margin: the gain an edit of a correct word into a different word needs (nats).
        reading_margin: the gain the recognition specialist's reading of a whole text, two words or more
            heard again, needs (nats).
        reading_suspicion: the surprisal from which a correct word that sounds like another may be heard
            again in a suspect text's reading (nats).
        flag_rate: the share of clean texts asked to reach the specialists on their surprise alone.
        sound_alike_flag_rate: the further share that may reach them for a word that sounds like another.
        reading_flag_rate: the share, beyond ``flag_rate``, whose most surprising sound-alike word reaches
            ``reading_suspicion`` (it flags nothing: readings are made of suspect texts only).
        false_edit_rate: the share of clean texts that may be edited, all tiers together.
        texts: how many clean texts.
        flagged: the share of them the assessor flags at ``suspicion``.
        edit_rates: per tier, the share of them whose best edit of that tier reaches its margin.
    """

    suspicion: float
    sound_alike_suspicion: float
    accept_margin: float
    sound_alike_margin: float
    known_margin: float
    reading_margin: float
    reading_suspicion: float
    flag_rate: float
    sound_alike_flag_rate: float
    reading_flag_rate: float
    false_edit_rate: float
    texts: int
    flagged: float
    edit_rates: dict[str, float] = field(default_factory=dict)

    def options(self) -> dict[str, float]:
        """The :class:`SMSRefiner` keyword arguments (what a bundle's ``refiner`` section holds)."""
        return {
            k: round(getattr(self, k), 4)
            for k in (
                "suspicion",
                "sound_alike_suspicion",
                "accept_margin",
                "sound_alike_margin",
                "known_margin",
                "reading_margin",
                "reading_suspicion",
            )
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return asdict(self)


def calibrate(
    refiner: SMSRefiner,
    clean_texts: Sequence[str],
    flag_rate: float = 0.4,
    false_edit_rate: float = 0.01,
    sound_alike_flag_rate: float = 0.0,
    reading_flag_rate: float | None = None,
) -> SMSCalibration:
    """Choose the assessor's thresholds and the reviewer's margins on clean held-out text.

    ``suspicion`` is the ``1 - flag_rate`` quantile of the clean texts' highest word suspicion
    (:meth:`SMSRefiner.suspicion_of`; so about ``flag_rate`` of clean texts reach the specialists, the rest
    pass for one call); a word no vocabulary knows is always a suspect, so where such words already flag
    more than ``flag_rate`` of the texts, only they do. ``sound_alike_suspicion`` is the lowest surprisal
    of a word that sounds like another known word (:meth:`SMSRefiner.sound_alike_surprisals`) at which at
    most ``flag_rate + sound_alike_flag_rate`` of the clean texts are flagged in all (``suspicion`` itself
    when ``sound_alike_flag_rate`` is 0). Each margin is the ``1 - false_edit_rate / 4`` quantile of the
    best gain the specialists find, in its tier (:data:`~monai_imc.text_candidates.TIERS`), on the clean
    texts, with the suspects ranked as the calibrated assessor ranks them (so at most about
    ``false_edit_rate`` of clean text is edited); the margin of a correct word into another word is at
    least the other two. ``reading_margin`` is the same quantile of the gain of the recognition
    specialist's reading of each whole text, where it hears two words or more again
    (:meth:`SMSRefiner.readings`; the words it may hear again are those of ``reading_suspicion``,
    :meth:`SMSRefiner.misheard`), at least ``accept_margin``: the three tiers and the reading share the
    budget. Use held-out text whose
    words the refiner's vocabulary has not all seen (as new text will be), never test text.

    Args:
        refiner: the refiner to calibrate (its model, vocabularies and ``max_suspects``).
        clean_texts: clean held-out texts.
        flag_rate: the share of clean texts that may reach the specialists on their surprise alone.
        false_edit_rate: the share of clean texts that may be edited.
        sound_alike_flag_rate: the further share that may reach them for a word that sounds like another.
        reading_flag_rate: chooses ``reading_suspicion`` as ``sound_alike_flag_rate`` chooses
            ``sound_alike_suspicion``, without flagging a text (default: ``sound_alike_flag_rate``, the same
            threshold).

    Raises:
        ValueError: no texts, a rate outside (0, 1) (``sound_alike_flag_rate``: [0, 1)), or a refiner
            without lexical specialists.
    """
    if not clean_texts:
        raise ValueError("calibrate needs clean validation texts")
    for name, rate in (("flag_rate", flag_rate), ("false_edit_rate", false_edit_rate)):
        if not 0.0 < rate < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {rate}")
    if not 0.0 <= sound_alike_flag_rate < 1.0:
        raise ValueError(f"sound_alike_flag_rate must be in [0, 1), got {sound_alike_flag_rate}")
    if refiner.vocabulary is None or getattr(refiner.model, "prompt_logprobs", None) is None:
        raise ValueError("calibrate needs lexical specialists (a vocabulary and token log-probabilities)")

    def probe(suspicion: float, sound_alike_suspicion: float | None = None) -> SMSRefiner:
        return SMSRefiner(
            refiner.model,
            refiner.prompts,
            refiner.vocabulary,
            clinical=refiner.clinical,
            generative=False,
            suspicion=suspicion,
            sound_alike_suspicion=sound_alike_suspicion,
            max_suspects=refiner.max_suspects,
            max_edit_ratio=refiner.max_edit_ratio,
        )

    plain = probe(-math.inf)
    texts = [plain.as_data(raw) for raw in clean_texts]
    highest: list[float] = []
    sounding: list[float] = []
    for text in texts:
        assessment = plain.assess(text)
        highest.append(max(plain.word_suspicions(text, assessment), default=0.0))
        sounding.append(max(plain.sound_alike_surprisals(text, assessment), default=-math.inf))
    suspicion = _quantile(highest, 1.0 - flag_rate)
    # at most flag_rate of the texts flag: where texts tie at the quantile (or it sits one text high), the
    # next surprisal above it
    above = sorted(h for h in highest if h > suspicion and not math.isinf(h))
    while above and sum(h >= suspicion for h in highest) > flag_rate * len(highest):
        suspicion = above.pop(0)
    if math.isinf(suspicion):  # words no vocabulary knows already flag that many: only they flag
        suspicion = max((h for h in highest if not math.isinf(h)), default=0.0) + 1e-6

    def lowered(extra_rate: float) -> float:
        # the lowest surprisal of a sound-alike word at which at most flag_rate + extra_rate of texts flag
        threshold = suspicion
        if extra_rate > 0:
            for t in sorted({s for s in sounding if not math.isinf(s) and s < suspicion}, reverse=True):
                flagged = sum(h >= suspicion or s >= t for h, s in zip(highest, sounding))
                if flagged / len(texts) > flag_rate + extra_rate:
                    break
                threshold = t
        return threshold

    sound_alike_suspicion = lowered(sound_alike_flag_rate)
    if reading_flag_rate is None:
        reading_flag_rate = sound_alike_flag_rate
    reading_suspicion = lowered(reading_flag_rate)
    # The margins: every word a suspect (a finite threshold far below any surprisal keeps the ranking of
    # the calibrated assessor, sound-alike words raised as it raises them).
    floor = -1e9
    ranked = probe(floor, floor - (suspicion - sound_alike_suspicion))
    assessor = probe(suspicion, sound_alike_suspicion)
    assessor.reading_suspicion = reading_suspicion
    best: dict[str, list[float]] = {tier: [] for tier in TIERS}
    reading: list[float] = []
    for text in texts:
        assessment = ranked.assess(text)
        edits = [c for c in ranked.propose(text, assessment) if not ranked._check(text, c.apply(text), c.kind)]
        values, _calls = ranked.score([c.apply(text) for c in edits])
        base = assessment.log_likelihood or 0.0
        for tier in TIERS:
            best[tier].append(
                max((v - base for v, c in zip(values, edits) if c.tier == tier), default=-math.inf)
            )
        # the recognition specialist's reading of the whole text (two sound-alikes or more), by its own margin
        misheard = set(assessor.misheard(text, assessment))  # the words the calibrated assessor hears again
        heard = [
            (r, extra)
            for r, extra in ranked.readings(
                text,
                [
                    (v - base, c)
                    for v, c in zip(values, edits)
                    if c.tier != "sound-alike" or (c.start, c.end) in misheard
                ],
            )
            if not ranked._check(text, r, "recognition")
        ]
        reading.append(-math.inf)
        if heard:
            read, _calls = ranked.score([r for r, _extra in heard])
            reading[-1] = max(value - base - extra for value, (_r, extra) in zip(read, heard))
    q = 1.0 - false_edit_rate / (len(TIERS) + 1)  # the budget shared by the tiers and the reading
    margins = {tier: max(0.0, _quantile(best[tier], q)) + 1e-6 for tier in TIERS}
    margins["known"] = max(margins.values())
    # a reading changes correct words: never on less evidence than an unknown word's edit (where the clean
    # texts give no reading at all, the quantile alone would ask nothing)
    reading_margin = max(margins["unknown"], _quantile(reading, q) + 1e-6)
    return SMSCalibration(
        suspicion=suspicion,
        sound_alike_suspicion=sound_alike_suspicion,
        accept_margin=margins["unknown"],
        sound_alike_margin=margins["sound-alike"],
        known_margin=margins["known"],
        reading_margin=reading_margin,
        reading_suspicion=reading_suspicion,
        flag_rate=flag_rate,
        sound_alike_flag_rate=sound_alike_flag_rate,
        reading_flag_rate=reading_flag_rate,
        false_edit_rate=false_edit_rate,
        texts=len(clean_texts),
        flagged=sum(h >= suspicion or s >= sound_alike_suspicion for h, s in zip(highest, sounding)) / len(texts),
        edit_rates={
            **{tier: sum(g >= margins[tier] for g in best[tier]) / len(best[tier]) for tier in TIERS},
            "reading": sum(g >= reading_margin for g in reading) / len(reading),
        },
    )


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return float(ordered[index])

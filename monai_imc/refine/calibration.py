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
        accept_margin: the gain an edit of an unknown word needs (nats).
        sound_alike_margin: the gain an edit of a correct word into a sound-alike needs (nats).
        known_margin: the gain an edit of a correct word into a different word needs (nats).
        flag_rate: the share of clean texts asked to reach the specialists.
        false_edit_rate: the share of clean texts that may be edited, all tiers together.
        texts: how many clean texts.
        flagged: the share of them the assessor flags at ``suspicion``.
        edit_rates: per tier, the share of them whose best edit of that tier reaches its margin.
    """

    suspicion: float
    accept_margin: float
    sound_alike_margin: float
    known_margin: float
    flag_rate: float
    false_edit_rate: float
    texts: int
    flagged: float
    edit_rates: dict[str, float] = field(default_factory=dict)

    def options(self) -> dict[str, float]:
        """The :class:`SMSRefiner` keyword arguments (what a bundle's ``refiner`` section holds)."""
        return {
            k: round(getattr(self, k), 4)
            for k in ("suspicion", "accept_margin", "sound_alike_margin", "known_margin")
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return asdict(self)


def calibrate(
    refiner: SMSRefiner, clean_texts: Sequence[str], flag_rate: float = 0.4, false_edit_rate: float = 0.01
) -> SMSCalibration:
    """Choose the assessor's ``suspicion`` and the reviewer's margins on clean held-out text.

    ``suspicion`` is the ``1 - flag_rate`` quantile of the clean texts' highest word suspicion
    (:meth:`SMSRefiner.suspicion_of`; so about ``flag_rate`` of clean texts reach the specialists, the rest
    pass for one call); a word no vocabulary knows is always a suspect, so where such words already flag
    more than ``flag_rate`` of the texts, only they do. Each margin is the
    ``1 - false_edit_rate / 3`` quantile of the best gain the specialists find, in its tier
    (:data:`~monai_imc.text_candidates.TIERS`), on the clean texts (so at most about ``false_edit_rate``
    of clean text is edited); the margin of a correct word into another word is at least the other two.
    Use held-out text whose words the refiner's vocabulary has not all seen (as new text will be), never
    test text.

    Args:
        refiner: the refiner to calibrate (its model, vocabularies and ``max_suspects``).
        clean_texts: clean held-out texts.
        flag_rate: the share of clean texts that may reach the specialists.
        false_edit_rate: the share of clean texts that may be edited.

    Raises:
        ValueError: no texts, a rate outside (0, 1), or a refiner without lexical specialists.
    """
    if not clean_texts:
        raise ValueError("calibrate needs clean validation texts")
    for name, rate in (("flag_rate", flag_rate), ("false_edit_rate", false_edit_rate)):
        if not 0.0 < rate < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {rate}")
    if refiner.vocabulary is None or getattr(refiner.model, "prompt_logprobs", None) is None:
        raise ValueError("calibrate needs lexical specialists (a vocabulary and token log-probabilities)")
    probe = SMSRefiner(
        refiner.model,
        refiner.prompts,
        refiner.vocabulary,
        clinical=refiner.clinical,
        generative=False,
        suspicion=-math.inf,
        max_suspects=refiner.max_suspects,
        max_edit_ratio=refiner.max_edit_ratio,
    )
    highest: list[float] = []
    best: dict[str, list[float]] = {tier: [] for tier in TIERS}
    for raw in clean_texts:
        text = probe.as_data(raw)
        assessment = probe.assess(text)
        highest.append(max(probe.word_suspicions(text, assessment), default=0.0))
        edits = [c for c in probe.propose(text, assessment) if not probe._check(text, c.apply(text), c.kind)]
        values, _calls = probe.score([c.apply(text) for c in edits])
        base = assessment.log_likelihood or 0.0
        for tier in TIERS:
            best[tier].append(
                max((v - base for v, c in zip(values, edits) if c.tier == tier), default=-math.inf)
            )
    suspicion = _quantile(highest, 1.0 - flag_rate)
    if math.isinf(suspicion):  # words no vocabulary knows already flag that many: only they flag
        suspicion = max((h for h in highest if not math.isinf(h)), default=0.0) + 1e-6
    q = 1.0 - false_edit_rate / len(TIERS)
    margins = {tier: max(0.0, _quantile(best[tier], q)) + 1e-6 for tier in TIERS}
    margins["known"] = max(margins.values())
    return SMSCalibration(
        suspicion=suspicion,
        accept_margin=margins["unknown"],
        sound_alike_margin=margins["sound-alike"],
        known_margin=margins["known"],
        flag_rate=flag_rate,
        false_edit_rate=false_edit_rate,
        texts=len(clean_texts),
        flagged=sum(h >= suspicion for h in highest) / len(highest),
        edit_rates={tier: sum(g >= margins[tier] for g in best[tier]) / len(best[tier]) for tier in TIERS},
    )


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return float(ordered[index])

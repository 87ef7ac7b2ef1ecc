"""What SMS returns: the refinement of one text, its edits, the assessor's verdict and every agent step."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

__all__ = ["AgentStep", "Assessment", "Edit", "Refinement", "text_edits"]


@dataclass(frozen=True)
class Edit:
    """One change from the original text: ``original[start:end]`` (``before``) became ``after``."""

    start: int
    end: int
    before: str
    after: str
    agent: str


@dataclass(frozen=True)
class AgentStep:
    """One agent call: which agent, what it saw, what it said, what was decided."""

    agent: str
    input: str
    output: str
    verdict: str


@dataclass(frozen=True)
class Refinement:
    """The result of refining one text.

    Attributes:
        original: the text as received (always kept).
        text: the final text (``original`` when nothing was accepted).
        changed: whether ``text`` differs from ``original``.
        kind: the assessor's judgement (``clean`` or an error kind; ``None`` if unreadable).
        edits: the accepted changes, with the agent that made them.
        scores: the model's log-likelihood of the original (``original_log_likelihood``) and of the final
            text (``final_log_likelihood``) as a user's message, where measured.
        calls: model calls made (chat and scoring).
        rounds: specialist rounds run.
        trace: every agent step, in order.
        rejected: reasons candidates were rejected (guard violations, a gain below the margin).
    """

    original: str
    text: str
    changed: bool
    kind: str | None
    edits: tuple[Edit, ...]
    scores: dict[str, float]
    calls: int
    rounds: int
    trace: tuple[AgentStep, ...]
    rejected: tuple[str, ...] = field(default=())


_TOKENS = re.compile(r"\w+|[^\w\s]+|\s+")


def text_edits(original: str, final: str, agent: str) -> list[Edit]:
    """The word-level edits that turn ``original`` into ``final`` (character spans of ``original``)."""
    a, b = _TOKENS.findall(original), _TOKENS.findall(final)
    offsets = [0]
    for token in a:
        offsets.append(offsets[-1] + len(token))
    edits = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            edits.append(Edit(offsets[i1], offsets[i2], "".join(a[i1:i2]), "".join(b[j1:j2]), agent))
    return edits


@dataclass(frozen=True)
class Assessment:
    """The assessor's verdict on one text.

    Attributes:
        noisy: whether specialists are needed.
        kinds: the specialists to instantiate (:data:`~monai_imc.text_candidates.KINDS`, or the judge's label).
        suspects: ``(start, end)`` character spans of the words that look wrong.
        surprisal: per word, the model's surprisal (nats) of it, where the model gives token log-probabilities.
        log_likelihood: the model's log-likelihood of the whole text as a user's message, where measured.
        reply: the judge's reply (generative assessor) or a summary.
    """

    noisy: bool
    kinds: tuple[str, ...]
    suspects: tuple[tuple[int, int], ...] = ()
    surprisal: tuple[tuple[str, float], ...] = ()
    log_likelihood: float | None = None
    reply: str = ""

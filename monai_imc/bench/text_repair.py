"""The benchmark's text methods (:class:`TextMethods`) and what they did to a question (:class:`TextRepair`).

For ``sms`` / ``imc`` (the SMS refiner), ``spellcheck`` and ``repass``: the question asked, the model calls,
whether the question was edited, how many candidate edits a guard (:func:`monai_imc.guards.check_repair`)
refused on the way, and how many guards the question asked breaks against the question given (a method
that applies the guards never does; ``repass`` uses the model's reply as is). An edit of a clean question
is a false edit (see :mod:`monai_imc.bench.sms_table`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monai_imc.bench.records import RunStats
from monai_imc.guards import check_repair
from monai_imc.models.base import Capabilities, VisionLanguageModel
from monai_imc.prompts import rewrite_messages
from monai_imc.refine import Refinement, SMSRefiner

if TYPE_CHECKING:
    from monai_imc.bench.spellcheck import SpellCheckBaseline

__all__ = [
    "TextMethods",
    "TextRepair",
    "guard_refusals",
    "repair_of_refinement",
    "repair_of_reply",
    "repair_of_spellcheck",
]


@dataclass(frozen=True)
class TextRepair:
    """One text method on one question.

    Attributes:
        text: the question asked.
        calls: model calls made.
        edited: whether ``text`` differs from the question given.
        guard_refusals: candidate edits a guard refused.
        guard_violations: guards ``text`` breaks against the question given.
    """

    text: str
    calls: int
    edited: bool
    guard_refusals: int
    guard_violations: int


def guard_refusals(refinement: Refinement) -> int:
    """The candidates of ``refinement`` that a guard refused (rejected steps whose edit breaks a guard; a
    candidate rejected for another reason, such as a gain below the margin, does not count)."""
    return sum(
        1
        for step in refinement.trace
        if step.verdict.startswith("rejected") and check_repair(step.input, step.output)
    )


def _repair(given: str, asked: str, calls: int, refusals: int) -> TextRepair:
    return TextRepair(asked, calls, asked != given, refusals, len(check_repair(given, asked)))


def repair_of_refinement(given: str, refinement: Refinement) -> TextRepair:
    """The SMS refiner's work on ``given``."""
    return _repair(given, refinement.text, refinement.calls, guard_refusals(refinement))


def repair_of_spellcheck(given: str, checker: SpellCheckBaseline) -> TextRepair:
    """The spell-check baseline's work on ``given`` (no model call; a correction a guard refuses is dropped)."""
    text, refused = checker.check(given)
    return _repair(given, text, 0, int(bool(refused)))


def repair_of_reply(given: str, reply: str) -> TextRepair:
    """The one-call repass: the model's reply used as is (no guard applied)."""
    return _repair(given, reply, 1, 0)


class TextMethods:
    """The text methods of the benchmark on one question each: ``sms`` / ``imc`` (the pipeline's SMS
    refine step), ``repass`` (the text model asked once to fix the question, its reply used as is) and
    ``spellcheck`` (:mod:`monai_imc.bench.spellcheck`); refinements and replies kept by question text.

    Args:
        refine: the SMS refine step (:meth:`monai_imc.pipeline.IMCPipeline.refine`).
        refiner: the SMS refiner (the spell checker shares its vocabulary and guards).
        text_model: the model of the repass call.
        batch_size: repass replies per ``chat_batch`` call (1: one by one).
        memoize: keep refinements and replies by text.
    """

    def __init__(
        self,
        refine: Any,
        refiner: SMSRefiner,
        text_model: VisionLanguageModel,
        batch_size: int,
        memoize: bool = True,
    ) -> None:
        self._refine, self.refiner, self.text_model = refine, refiner, text_model
        self.batch_size, self.memoize = batch_size, memoize
        self.batch_chat = Capabilities.of(text_model).batch_chat
        self._refined: dict[str, Refinement] = {}
        self._repassed: dict[str, str] = {}
        self._checker: SpellCheckBaseline | None = None

    def repair(self, method: str, question: str, stats: RunStats) -> TextRepair | None:
        """What ``method`` does to ``question`` (``None`` for a method that leaves the question alone)."""
        if method in ("sms", "imc", "imc+restore"):
            return repair_of_refinement(question, self.refine(question, stats))
        if method == "repass":
            return repair_of_reply(question, self.repass(question, stats))
        if method == "spellcheck":
            if self._checker is None:
                from monai_imc.bench.spellcheck import SpellCheckBaseline  # symspellpy: the bench extra

                self._checker = SpellCheckBaseline.like(self.refiner)
            return repair_of_spellcheck(question, self._checker)
        return None

    def refine(self, question: str, stats: RunStats) -> Refinement:
        """The SMS refinement of a question (kept by text)."""
        if question not in self._refined or not self.memoize:
            start = time.perf_counter()
            self._refined[question] = self._refine(question)
            stats.add_time("sms", time.perf_counter() - start)
            stats.refinements += 1
        return self._refined[question]

    def repass(self, question: str, stats: RunStats) -> str:
        """The one-call repair of a question by the text model (kept by text); the question if it says nothing."""
        if question not in self._repassed or not self.memoize:
            start = time.perf_counter()
            reply = " ".join(self.text_model.chat(rewrite_messages(question), max_new_tokens=48).split())
            stats.add_time("repass", time.perf_counter() - start)
            stats.repass_calls += 1
            self._repassed[question] = reply or question
        return self._repassed[question]

    def repass_many(self, questions: Sequence[str], stats: RunStats) -> None:
        """Repass the questions not yet repassed, in batches where the text model has ``chat_batch``."""
        todo = [q for q in dict.fromkeys(questions) if q not in self._repassed]
        if not self.batch_chat or self.batch_size == 1:
            for q in todo:
                self.repass(q, stats)
            return
        for first in range(0, len(todo), self.batch_size):
            chunk = todo[first : first + self.batch_size]
            start = time.perf_counter()
            replies = self.text_model.chat_batch(  # type: ignore[attr-defined]
                [rewrite_messages(q) for q in chunk], max_new_tokens=48
            )
            stats.add_time("repass", time.perf_counter() - start)
            stats.repass_calls += len(chunk)
            for q, reply in zip(chunk, replies):
                self._repassed[q] = " ".join(reply.split()) or q

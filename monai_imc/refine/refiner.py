"""The SMS refiner: an assessor, specialists and a reviewer, every one the same model.

See :mod:`monai_imc.refine` for the method; this module holds the loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from monai_imc.guards import check_repair
from monai_imc.model_vocabulary import Vocabulary
from monai_imc.models.base import Message, VisionLanguageModel
from monai_imc.noise.metrics import edit_distance
from monai_imc.refine import assessor, reading
from monai_imc.refine.prompts import SMSPrompts
from monai_imc.refine.records import AgentStep, Assessment, Edit, Refinement, text_edits
from monai_imc.text_candidates import (
    KINDS,
    Candidate,
    apply_candidates,
    is_correct,
    propose,
)
from monai_imc.vocabulary import ClinicalVocabulary, read_word_list

logger = logging.getLogger(__name__)

__all__ = ["SMSRefiner"]


class _Accepted(NamedTuple):
    text: str | None
    score: float
    calls: int
    base: float | None = None


class SMSRefiner:
    """Repair noisy clinical text with agents instantiated from one model.

    Args:
        model: any :class:`~monai_imc.models.base.VisionLanguageModel` (local or remote).
        prompts: the chat prompts of the judge and of the generative specialist (default: the reference
            model's).
        vocabulary: the words the lexical specialists may write (default ``"auto"``:
            :meth:`Vocabulary.from_model`, the model's tokenizer words plus the ``words.txt`` beside its
            weights; ``None``, or a model without a tokenizer such as a remote server: no lexical specialists).
        clinical: words known to be correct beyond the model's, which are only corrected on an overwhelming
            gain (default ``"auto"``: :meth:`ClinicalVocabulary.system`, the system's Hunspell dictionaries
            plus ``site_words``; ``None``: the model's words only).
        site_words: a site's word list (one word per line), added to the clinical vocabulary and to the words
            the specialists may write.
        generative: also ask the model to rewrite the text (one chat call per round); default: only when
            there are no lexical specialists.
        max_rounds: specialist rounds at most.
        suspicion: a word whose surprisal (nats) reaches this makes the text suspect (lexical assessor;
            a known first word never counts); chosen on clean validation text (:func:`calibrate`).
        sound_alike_suspicion: the lower surprisal that makes a suspect of a correct word that sounds like
            another known word (``long`` for ``lung``: speech recognition writes real words); default
            ``suspicion``; chosen on clean validation text too.
        max_suspects: at most this many of the most surprising words get specialists.
        accept_margin: how much the model's log-likelihood of a candidate must exceed the text's (nats) for
            the reviewer to accept an edit of an unknown word; chosen on clean held-out text (:func:`calibrate`).
        sound_alike_margin: the gain an edit of a correct word into a sound-alike (or a join, a filler
            dropped) needs; default ``accept_margin``.
        known_margin: the gain an edit of a correct word into a different word needs (overwhelming);
            default twice the larger of the other two margins.
        reading_margin: the gain the recognition specialist's reading of a whole text needs, where it hears
            two words or more misheard (:meth:`readings`); default ``sound_alike_margin``.
        reading_suspicion: once a text is suspect of a misrecognised word, the surprisal from which another
            correct word that sounds like a known word may be heard again in the reading (:meth:`misheard`);
            default ``sound_alike_suspicion``. It flags no text by itself.
        max_edit_ratio: a candidate may differ from the text by at most this share of its characters
            (whole sentences may go when the kind is ``distractor``).
        max_new_tokens: longest agent reply.
    """

    def __init__(
        self,
        model: VisionLanguageModel,
        prompts: SMSPrompts | None = None,
        vocabulary: Vocabulary | None | str = "auto",
        clinical: ClinicalVocabulary | None | str = "auto",
        site_words: str | Path | None = None,
        generative: bool | None = None,
        max_rounds: int = 1,
        suspicion: float = 8.0,
        sound_alike_suspicion: float | None = None,
        max_suspects: int = 3,
        accept_margin: float = 5.0,
        sound_alike_margin: float | None = None,
        known_margin: float | None = None,
        reading_margin: float | None = None,
        reading_suspicion: float | None = None,
        max_edit_ratio: float = 0.35,
        max_new_tokens: int = 48,
    ) -> None:
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
        self.model = model
        self.prompts = prompts or SMSPrompts.reference()
        if isinstance(vocabulary, str) and vocabulary != "auto":
            raise ValueError(f"vocabulary must be a Vocabulary, None or 'auto', got {vocabulary!r}")
        if isinstance(clinical, str) and clinical != "auto":
            raise ValueError(f"clinical must be a ClinicalVocabulary, None or 'auto', got {clinical!r}")
        lexical = vocabulary is not None and (
            vocabulary != "auto" or getattr(model, "tokenizer", None) is not None
        )
        if isinstance(clinical, str):
            clinical = ClinicalVocabulary.system() if lexical else None
        if isinstance(vocabulary, str):  # the tokenizer's words that the clinical vocabulary confirms
            vocabulary = Vocabulary.from_model(model, dictionary=clinical) if lexical else None
        site = read_word_list(site_words) if site_words is not None else set()
        if clinical is not None and site:
            clinical = ClinicalVocabulary(clinical.words | site, (*clinical.sources, str(site_words)))
        if vocabulary is not None and site:
            vocabulary = Vocabulary(vocabulary.words | site)  # a site's terms may be written too
        self.vocabulary = vocabulary
        self.clinical = clinical
        self.generative = (vocabulary is None) if generative is None else bool(generative)
        if self.vocabulary is None and not self.generative:
            raise ValueError("SMS needs a vocabulary (lexical specialists) or generative=True")
        self.max_rounds = max_rounds
        self.suspicion = float(suspicion)
        self.sound_alike_suspicion = (
            self.suspicion if sound_alike_suspicion is None else float(sound_alike_suspicion)
        )
        self.max_suspects = max_suspects
        self.accept_margin = float(accept_margin)
        self.sound_alike_margin = (
            self.accept_margin if sound_alike_margin is None else float(sound_alike_margin)
        )
        self.known_margin = (
            2.0 * max(self.accept_margin, self.sound_alike_margin)
            if known_margin is None
            else float(known_margin)
        )
        self.reading_margin = self.sound_alike_margin if reading_margin is None else float(reading_margin)
        self.reading_suspicion = (
            self.sound_alike_suspicion if reading_suspicion is None else float(reading_suspicion)
        )
        self.max_edit_ratio = max_edit_ratio
        self.max_new_tokens = max_new_tokens
        self._context = _user_turn_prefix(model)
        self._special = _special_texts(model)

    # The model, as the agents use it -------------------------------------------------------------------
    def _chat(self, messages: list[Message]) -> str:
        return self.model.chat(messages, max_new_tokens=self.max_new_tokens, do_sample=False).strip()

    def score(self, texts: Sequence[str]) -> tuple[list[float], int]:
        """The model's log-likelihood of each text as a user's message, and the model calls it took.

        One batched call where the model offers ``log_likelihoods`` (the local adapter), else one per text.
        """
        if not texts:
            return [], 0
        batched = getattr(self.model, "log_likelihoods", None)
        if batched is not None:
            return list(batched(list(texts), self._context)), 1
        return [self.model.log_likelihood(t, context=self._context) for t in texts], len(texts)

    def as_data(self, text: str) -> str:
        """``text`` with the model's special tokens (image placeholders, turn markers) removed, one line."""
        for token in self._special:
            text = text.replace(token, " ")
        return " ".join(text.split())

    # The agents -------------------------------------------------------------------------------------
    def assess(self, text: str) -> Assessment:
        """Assessor: is ``text`` noisy, and how? One model call.

        Lexical (the model gives token log-probabilities): the model's surprisal of each word; the text is
        suspect when a word that is not protected reaches :attr:`suspicion` or when it holds several
        sentences. The kinds follow from the suspects (unknown word: spelling and terminology; known
        word: recognition; several sentences: distractor). Otherwise the generative judge names the kind.
        """
        token_logprobs = getattr(self.model, "prompt_logprobs", None)
        if self.vocabulary is None or token_logprobs is None:
            label, reply = self._judge(text)
            noisy = label not in (None, self.prompts.clean_label)
            return Assessment(noisy, (label,) if noisy and label else (), reply=reply)
        return self._lexical_assessment(text, token_logprobs(self._context + text))

    def assess_many(self, texts: Sequence[str]) -> list[Assessment]:
        """:meth:`assess` of each text; the lexical assessor reads all of them in batched calls where the model
        offers ``prompt_logprobs_many`` (the local adapter: a study's texts in one forward pass)."""
        many = getattr(self.model, "prompt_logprobs_many", None)
        if self.vocabulary is None or many is None:
            return [self.assess(t) for t in texts]
        rows = many([self._context + t for t in texts])
        return [self._lexical_assessment(t, r) for t, r in zip(texts, rows)]

    def _lexical_assessment(
        self, text: str, rows: Sequence[tuple[str, float | None, int, int]]
    ) -> Assessment:
        """The lexical assessor's verdict on ``text`` from the token log-probabilities of context + text."""
        return assessor.lexical_assessment(self, text, rows, len(self._context))

    def suspicion_of(self, text: str, match: re.Match[str], surprisal: float, index: int) -> float | None:
        """How suspect the word ``match`` of ``text`` is (:func:`monai_imc.refine.assessor.suspicion_of`)."""
        return assessor.suspicion_of(self, text, match, surprisal, index)

    def word_suspicions(self, text: str, assessment: Assessment) -> list[float]:
        """:meth:`suspicion_of` every word of ``text`` that counts, from its lexical ``assessment``."""
        return [r for _m, _v, r in assessor.rated_words(self, text, assessment) if r is not None]

    def sound_alike_surprisals(self, text: str, assessment: Assessment) -> list[float]:
        """The surprisal (nats) of each word of ``text`` that :attr:`sound_alike_suspicion` applies to
        (:func:`monai_imc.refine.assessor.sound_alike_words`)."""
        return [v for _m, v in assessor.sound_alike_words(self, text, assessment)]

    def is_correct(self, word: str) -> bool:
        """Whether ``word`` is a correct word (the model knows it, or the clinical vocabulary holds it)."""
        return self.vocabulary is not None and is_correct(word, self.vocabulary, self.clinical)

    def margin(self, candidate: Candidate) -> float:
        """The log-likelihood gain (nats) the reviewer asks of ``candidate``, by its tier."""
        if candidate.tier == "known":
            return self.known_margin
        return self.sound_alike_margin if candidate.tier == "sound-alike" else self.accept_margin

    def _judge(self, text: str) -> tuple[str | None, str]:
        reply = self._chat(self.prompts.judge(text))
        return self.prompts.parse_judgement(reply), reply

    def propose(self, text: str, assessment: Assessment) -> list[Candidate]:
        """Lexical specialists: single edits of the suspect words (and the distractor cut), from the vocabulary;
        when the assessor heard a misrecognised word (``recognition``), also every sound-alike of every other
        word (:meth:`readings` reads them together: speech recognition mishears several words of a sentence,
        and each alone barely surprises the model)."""
        if self.vocabulary is None:
            return []
        heard = self.misheard(text, assessment) if "recognition" in assessment.kinds else []
        out = []
        for c in propose(text, self.vocabulary, [k for k in assessment.kinds if k in KINDS], self.clinical):
            if (
                c.kind == "distractor"
                or any(c.start < b and c.end > a for a, b in assessment.suspects)
                or (c.tier == "sound-alike" and (c.start, c.end) in heard)
            ):
                out.append(c)
        return out

    def misheard(self, text: str, assessment: Assessment) -> list[tuple[int, int]]:
        """Where ``text`` may hold a misheard word (:func:`monai_imc.refine.reading.misheard`)."""
        return reading.misheard(self, text, assessment)

    def readings(self, text: str, scored: Sequence[tuple[float, Candidate]]) -> list[tuple[str, float]]:
        """The recognition specialist's readings of the whole ``text``, each with what it must gain beyond
        :attr:`reading_margin` (:func:`monai_imc.refine.reading.readings`)."""
        return reading.readings(self, text, scored)

    def rewrite(self, text: str, kind: str, feedback: str) -> str:
        """Generative specialist for ``kind``: the model's own repair of ``text``."""
        return " ".join(self._chat(self.prompts.rewrite(text, kind, feedback)).split())

    # The loop ---------------------------------------------------------------------------------------
    def refine(self, text: str) -> Refinement:
        """Refine one text; the original is always kept in the result.

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: ``text`` is empty.
        """
        _check_text(text)
        return self._refine(text, None)

    def refine_many(self, texts: Sequence[str]) -> list[Refinement]:
        """Refine several texts: the first assessment of all of them in batched calls (:meth:`assess_many`),
        then each text's specialists and review in turn; each result is :meth:`refine`'s.

        Raises:
            TypeError: a text is not a string.
            ValueError: a text is empty.
        """
        for text in texts:
            _check_text(text)
        currents = [self.as_data(t) or t for t in texts]
        return [self._refine(t, a) for t, a in zip(texts, self.assess_many(currents))]

    def _refine(self, text: str, first: Assessment | None) -> Refinement:
        """:meth:`refine`, its first assessment given (``first``) or made here."""
        current = self.as_data(text) or text
        trace: list[AgentStep] = []
        rejected: list[str] = []
        scores: dict[str, float] = {}
        calls = rounds = 0
        first_kind: str | None = None
        feedback = ""
        while rounds < self.max_rounds:
            assessment, first = (first, None) if first is not None else (self.assess(current), None)
            calls += 1
            verdict = ", ".join(assessment.kinds) if assessment.noisy else self.prompts.clean_label
            trace.append(AgentStep("assessor", current, assessment.reply, verdict))
            if first_kind is None:
                first_kind = assessment.kinds[0] if assessment.noisy else self.prompts.clean_label
            if assessment.log_likelihood is not None:
                scores.setdefault("original_log_likelihood", assessment.log_likelihood)
            if not assessment.noisy:
                break
            rounds += 1
            accepted = self._round(current, assessment, feedback, trace, rejected)
            calls += accepted.calls
            if accepted.base is not None:
                scores.setdefault("original_log_likelihood", accepted.base)
            if accepted.text is None:
                if not self.generative:
                    break  # the lexical specialists would propose the same edits again
                feedback = "; ".join(rejected[-3:])
                continue
            scores["final_log_likelihood"] = accepted.score
            current, feedback = accepted.text, ""
        final = current if current != self.as_data(text) and not check_repair(text, current) else text
        edits = tuple(self._edits(text, final, trace)) if final != text else ()
        logger.debug("refined in %d round(s), %d call(s), changed=%s", rounds, calls, final != text)
        return Refinement(
            text,
            final,
            final != text,
            first_kind,
            edits,
            scores,
            calls,
            rounds,
            tuple(trace),
            tuple(rejected),
        )

    def _round(
        self, text: str, assessment: Assessment, feedback: str, trace: list[AgentStep], rejected: list[str]
    ) -> _Accepted:
        """One specialist round and its review; returns the accepted text (or ``None``) and the calls made."""
        calls = 0
        base = assessment.log_likelihood
        proposals: dict[str, str] = {}
        needed: dict[str, float] = {}  # the margin each composed candidate must reach
        edits = self.propose(text, assessment)
        if edits:  # score every single edit at once, keep those that gain the margin, compose them per kind
            values, used = self.score([c.apply(text) for c in edits] + ([] if base is not None else [text]))
            calls += used
            if base is None:
                base, values = values[-1], values[:-1]
            gains = sorted(
                ((v - base, c) for v, c in zip(values, edits)), key=lambda x: -(x[0] - self.margin(x[1]))
            )
            good = [(g, c) for g, c in gains if g >= self.margin(c)]
            for kind in dict.fromkeys(c.kind for _g, c in good):
                chosen = [c for _g, c in good if c.kind == kind]
                proposals[f"specialist:{kind}"] = apply_candidates(text, chosen)
                needed[proposals[f"specialist:{kind}"]] = max(self.margin(c) for c in chosen)
            if len({c.kind for _g, c in good}) > 1:
                both = apply_candidates(text, [c for _g, c in good])
                proposals["specialists:" + "+".join(dict.fromkeys(c.kind for _g, c in good))] = both
                needed[both] = max(self.margin(c) for _g, c in good)
            heard = self.readings(text, gains) if "recognition" in assessment.kinds else []
            for i, (read_again, extra) in enumerate(r for r in heard if r[0] not in needed):
                proposals[f"specialist:recognition:reading{i or ''}"] = read_again
                needed[read_again] = self.reading_margin + extra
            if not good and gains:
                best_gain, best = gains[0]
                reason = (
                    f"self-assessment gain {best_gain:.2f} < margin {self.margin(best):.2f} "
                    f"({best.tier} word: best edit {best.before!r} -> {best.after!r})"
                )
                trace.append(
                    AgentStep(f"specialist:{best.kind}", text, best.apply(text), "rejected: " + reason)
                )
                rejected.append(reason)
        if self.generative:
            kind = assessment.kinds[0] if assessment.kinds else "typo"
            proposals[f"specialist:rewrite:{kind}"] = self.rewrite(text, kind, feedback)
            calls += 1
        admissible: dict[str, str] = {}
        for agent, candidate in proposals.items():
            problems = self._check(text, candidate, agent)
            if problems:
                trace.append(AgentStep(agent, text, candidate, "rejected: " + "; ".join(problems)))
                rejected.extend(problems)
            else:
                admissible[agent] = candidate
        if not admissible:
            return _Accepted(None, 0.0, calls, base)
        # Reviewer: the model's self-assessment of each admissible candidate against the text (one call).
        texts = list(dict.fromkeys(admissible.values()))
        values, used = self.score(texts + ([] if base is not None else [text]))
        calls += used
        if base is None:
            base, values = values[-1], values[:-1]
        by_text = dict(zip(texts, values))
        agent, candidate = max(
            admissible.items(), key=lambda kv: by_text[kv[1]] - needed.get(kv[1], self.accept_margin)
        )
        gain, margin = by_text[candidate] - base, needed.get(candidate, self.accept_margin)
        if gain < margin:
            reason = f"self-assessment gain {gain:.2f} < margin {margin:.2f}"
            trace.append(AgentStep(agent, text, candidate, "rejected: " + reason))
            rejected.append(reason)
            return _Accepted(None, 0.0, calls, base)
        trace.append(AgentStep(agent, text, candidate, f"accepted (gain {gain:.2f})"))
        return _Accepted(candidate, by_text[candidate], calls, base)

    @staticmethod
    def _edits(original: str, final: str, trace: list[AgentStep]) -> list[Edit]:
        accepted = [s.agent for s in trace if s.verdict.startswith("accepted")]
        return text_edits(original, final, "+".join(dict.fromkeys(accepted)) or "specialist")

    def _check(self, original: str, candidate: str, agent: str) -> list[str]:
        if not candidate.strip():
            return ["empty candidate"]
        if " ".join(candidate.split()) == " ".join(original.split()):
            return ["no change"]
        problems = check_repair(original, candidate)
        if "distractor" not in agent:
            ratio = edit_distance(original, candidate) / max(1, len(original))
            if ratio > self.max_edit_ratio:
                problems.append(f"not a minimal edit ({ratio:.0%} of the characters changed)")
        elif len(candidate) > len(original):
            problems.append("a distractor repair may only remove text")
        return problems

    def __repr__(self) -> str:
        lexical = f"{len(self.vocabulary)} words" if self.vocabulary is not None else "none"
        clinical = f"{len(self.clinical)} words" if self.clinical is not None else "none"
        return (
            f"SMSRefiner(vocabulary={lexical}, clinical={clinical}, generative={self.generative}, "
            f"max_rounds={self.max_rounds}, suspicion={self.suspicion}, "
            f"sound_alike_suspicion={self.sound_alike_suspicion}, accept_margin={self.accept_margin}, "
            f"sound_alike_margin={self.sound_alike_margin}, known_margin={self.known_margin}, "
            f"reading_margin={self.reading_margin}, reading_suspicion={self.reading_suspicion})"
        )


def _check_text(text: object) -> None:
    """Raise for what cannot be refined: not a string (``TypeError``), or empty (``ValueError``)."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty: nothing to refine")


def _user_turn_prefix(model: VisionLanguageModel) -> str:
    """What the model's chat template puts before a user's message (text scored as a user's words)."""
    render = getattr(model, "render_chat", None)
    if render is None:
        return ""
    marker = "\x00IMC-TEXT\x00"
    try:
        full = render([{"role": "user", "content": marker}], add_generation_prompt=False)
    except (ValueError, TypeError):  # a template that needs more than one message
        return ""
    return full[: full.index(marker)] if marker in full else ""


def _special_texts(model: VisionLanguageModel) -> list[str]:
    """The model's special token strings (image placeholders, turn markers), longest first."""
    found = set()
    tokenizer = getattr(model, "tokenizer", None)
    for token in getattr(tokenizer, "all_special_tokens", []) or []:
        if isinstance(token, str) and len(token) > 1:
            found.add(token)
    image_token = getattr(model, "image_token", None)
    if isinstance(image_token, str) and image_token:
        found.add(image_token)
    return sorted(found, key=len, reverse=True)

"""Candidate repairs of noisy clinical text, drawn from the words the model itself knows.

The SMS specialists (:mod:`monai_imc.refine`) propose minimal edits; this module lists them. Every
replacement word comes from the model's own vocabulary
(:meth:`monai_imc.model_vocabulary.Vocabulary.from_tokenizer`: the whole
words of its tokenizer) or from a site's word list, never from the noise generators, and the model's own
likelihood decides among them (the reviewer). One edit changes one place of the text:

- ``spelling`` (typos, OCR misreadings): a word the vocabulary does not know becomes one of the *nearest*
  known words within Damerau-Levenshtein distance 1 (words of up to 4 letters) or 2, a misreading of look-alike
  glyphs counting one edit (``patentt`` -> ``patent``, not ``patient``; ``ahnormal`` -> ``abnormal``, never
  ``normal``); a word whose letters were misread as digits (``1ung``, ``th1s``:
  :func:`monai_imc.lexicon.looks_misread`) becomes what it reads as (:func:`~monai_imc.misreading.ocr_readings`), and nothing else;
  the plural of another option is not proposed for a word that does not end in ``s`` (``orqan`` -> ``organ``,
  not ``organs``); words run together are read apart (:func:`~monai_imc.misreading.run_together`: ``isused`` -> ``is used``,
  ``tbisimage`` -> ``this image``) where no single word is as near, and never read as one of them (``used``);
- ``recognition`` (ASR mishearings, OCR splits): a correct word becomes a known word within distance 1 or
  one that sounds alike (a shared Metaphone or NYSIIS key: ``plural`` -> ``pleural``, ``long`` -> ``lung``),
  two or three words that form or sound like a known word are joined (``pneumo thorax``, ``new monia``),
  a filler (``uh``, ``um``: never a correct word; ``you know`` that asks nothing) is dropped;
- ``terminology`` (abbreviations, shorthand): an unknown short word becomes a known word that starts with
  its first letter and holds its letters in order (``abnl`` -> ``abnormal``, ``img`` -> ``image``), unless a
  word one edit away says something else (:func:`_contrast`: ``ls`` opening a question is ``is``, not
  ``lesion``);
- ``distractor``: of several sentences, only the one question is kept.

A word is *correct* when the model knows it or when it is in the clinical vocabulary
(:class:`monai_imc.vocabulary.ClinicalVocabulary`, words of 4 letters or more). Every candidate carries a
``tier`` that says how much evidence the reviewer must see: ``unknown`` (the word is not correct),
``sound-alike`` (a correct word into one that sounds like it, a join, a filler dropped) or ``known`` (a
correct word into a different word: the reviewer asks an overwhelming likelihood gain).

Protected words (negation, laterality, numbers, number words and units:
:func:`monai_imc.lexicon.is_protected_word`) and acronyms the vocabulary does not know (``IMC``, a
scanner's name) are never edited, and the guards check every composed text again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass

from monai_imc.guards import AUXILIARIES, OPENERS
from monai_imc.lexicon import is_protected_word, looks_misread
from monai_imc.misreading import (
    dropping_a_word,
    has_digit,
    max_distance,
    nearest,
    ocr_readings,
    reading_distance,
    run_together,
)
from monai_imc.model_vocabulary import Vocabulary
from monai_imc.word_relations import (
    FUNCTION_WORDS,
    admissible,
    is_sound_alike,
    same_number,
    same_polarity,
)

__all__ = [
    "FILLERS",
    "KINDS",
    "TIERS",
    "WORD",
    "Candidate",
    "apply_candidates",
    "filler_spans",
    "is_correct",
    "is_editable",
    "is_filler",
    "propose",
    "sound_alikes",
]

#: The specialists' kinds, in the order they are tried.
KINDS: tuple[str, ...] = ("spelling", "recognition", "terminology", "distractor")

#: How much evidence an edit needs, least first: of an unknown word, of a correct word into a sound-alike,
#: of a correct word into another word.
TIERS: tuple[str, ...] = ("unknown", "sound-alike", "known")

#: Shortest word the clinical vocabulary vouches for (shorter ones are mostly shorthand: ``pt``, ``nl``).
MIN_CLINICAL_LENGTH = 4

#: Filler words speech recognition leaves in dictated text (never correct words of clinical text).
FILLERS: frozenset[str] = frozenset({"uh", "um", "er", "erm", "hmm"})

#: A filler phrase of dictated speech (``is the liver you know enlarged``); not after an auxiliary or ``if``
#: (``do you know``, ``if you know`` ask something).
_FILLER_PHRASE = re.compile(r"(?<![A-Za-z])you know(?![A-Za-z])", re.IGNORECASE)
_ASKING = frozenset({"do", "does", "did", "can", "could", "would", "will", "should", "if", "don't", "didn't"})

WORD = re.compile(r"(?<![0-9][.,])[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*")
"""A word of a text as the agents see it: letters, with the digits that stand inside or beside them (``1ung``,
``th1s``, ``3cm``, ``T2``), so that a word whose letters were misread as digits is one word; not the letters
after a decimal point (``1.5T``)."""
_WORD_OR_CONTRACTION = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


@dataclass(frozen=True)
class Candidate:
    """One proposed edit: ``text[start:end]`` (``before``) becomes ``after``.

    Attributes:
        kind: the specialist that proposes it (one of :data:`KINDS`).
        start: character offset in the text; ``end``: end offset.
        before: the text replaced; ``after``: its replacement.
        tier: how much evidence it needs (one of :data:`TIERS`).
    """

    kind: str
    start: int
    end: int
    before: str
    after: str
    tier: str = "unknown"

    def apply(self, text: str) -> str:
        """``text`` with this edit applied, spaces tidied."""
        return " ".join((text[: self.start] + self.after + text[self.end :]).split())


_SENTENCE_START = re.compile(r"(?:^|[.?!:]\s+)$")


def _case_in(text: str, m: re.Match[str], word: str) -> str:
    """``word`` cased like the word ``m`` of ``text`` replaces (:func:`_case_like`), except that a capital ``I``
    that was a misread ``l`` (``Iocoted`` -> ``located``, ``Iung`` -> ``lung``) capitalises nothing inside a
    sentence."""
    source = m.group()
    misread_l = source[:1] == "I" and source[1:2].islower() and word[:1].lower() == "l"
    if misread_l and not _SENTENCE_START.search(text[: m.start()]):
        return word.lower()
    return _case_like(source, word)


def _case_like(source: str, word: str) -> str:
    if source.isupper() and len(source) > 1:
        return word.upper()
    return word.capitalize() if source[:1].isupper() else word


def is_correct(word: str, vocabulary: Vocabulary, clinical: Container[str] | None = None) -> bool:
    """Whether ``word`` is a correct word: the model knows it, it is a short English function word
    (:data:`~monai_imc.word_relations.FUNCTION_WORDS`), or the clinical vocabulary holds it (4+ letters)."""
    lw = word.lower()
    if lw in FILLERS:
        return False
    if lw in vocabulary or lw in FUNCTION_WORDS:
        return True
    return clinical is not None and len(lw) >= MIN_CLINICAL_LENGTH and lw in clinical


def is_editable(text: str, match: re.Match[str], vocabulary: Vocabulary) -> bool:
    """Whether the specialists may edit the word ``match`` of ``text`` (a :data:`WORD` match): not a protected
    word, not a token with a digit (``3cm``, ``T2``) unless its letters were misread as digits and it reads as
    a known word (:func:`~monai_imc.misreading.ocr_readings`: ``1ung``), not an acronym the vocabulary does not know (a site's or a
    device's name)."""
    word = match.group()
    if has_digit(word):  # a misread word only, and only into what it reads as
        return looks_misread(word) and bool(ocr_readings(word, vocabulary))
    return not (is_protected_word(word) or (len(word) > 1 and word.isupper() and word.lower() not in vocabulary))


def filler_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a filler phrase of dictated speech (``you know`` that asks nothing), as
    ``(start, end)`` character spans; single filler words are :data:`FILLERS`."""
    return list(_filler_phrases(text))


def is_filler(text: str, match: re.Match[str]) -> bool:
    """Whether the word ``match`` of ``text`` is a filler of dictated speech: one of :data:`FILLERS`, or a
    word of a filler phrase (:func:`filler_spans`)."""
    return match.group().lower() in FILLERS or any(a <= match.start() < b for a, b in _filler_phrases(text))


@functools.lru_cache(maxsize=256)  # asked once per word of a text by the assessor
def _filler_phrases(text: str) -> tuple[tuple[int, int], ...]:
    spans = []
    for m in _FILLER_PHRASE.finditer(text):
        before = _WORD_OR_CONTRACTION.findall(text[: m.start()])
        if before and before[-1].lower() not in _ASKING:
            spans.append((m.start(), m.end()))
    return tuple(spans)


def propose(
    text: str, vocabulary: Vocabulary, kinds: Sequence[str] = KINDS, clinical: Container[str] | None = None
) -> list[Candidate]:
    """Every single-place edit of ``text`` that the specialists of ``kinds`` would consider.

    Args:
        text: the text.
        vocabulary: the words the specialists may write (the model's).
        kinds: the specialists (of :data:`KINDS`).
        clinical: words known to be correct beyond the model's (see :func:`is_correct`).

    Raises:
        ValueError: an unknown kind.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown specialist kind(s) {unknown}; choose from {', '.join(KINDS)}")
    out: list[Candidate] = []
    matches = list(WORD.finditer(text))
    for index, m in enumerate(matches):
        word = m.group()
        lw = word.lower()
        if not is_editable(text, m, vocabulary):
            continue  # facts, and acronyms the model does not know (a site's or a device's name)
        if has_digit(word):  # letters misread as digits: only what the word reads as
            if "spelling" in kinds:
                out += [
                    Candidate("spelling", m.start(), m.end(), word, _case_in(text, m, w), "unknown")
                    for w in ocr_readings(word, vocabulary)
                ]
            continue
        if lw in FILLERS:  # a hesitation transcribed: it is only ever dropped
            if "recognition" in kinds:
                out.append(Candidate("recognition", m.start(), m.end(), word, "", "unknown"))
            continue
        correct = is_correct(lw, vocabulary, clinical)
        # A correct word may only be misheard (one edit, or a sound-alike); an unknown one may be misspelt.
        kind = "recognition" if correct else "spelling"
        if kind in kinds and len(lw) >= 2:
            options = set(vocabulary.near(lw, 1 if correct else max_distance(lw)))
            if not correct:  # an OCR misreading of look-alike glyphs may be more than two edits away
                options |= set(ocr_readings(word, vocabulary))
            if len(lw) >= 3:
                options |= set(vocabulary.sounds_like(lw))
            if correct:
                options |= set(sound_alikes(lw, vocabulary))
            else:
                options = same_number(lw, options) - dropping_a_word(lw, options, vocabulary)
                # nearest before admissible: a farther word never stands in for a nearer protected one
                options = nearest(word, options, vocabulary)
            for w in sorted(options):
                if not admissible(lw, w):
                    continue
                tier = "unknown" if not correct else "sound-alike" if is_sound_alike(lw, w) else "known"
                out.append(Candidate(kind, m.start(), m.end(), word, _case_in(text, m, w), tier))
        if kind == "spelling" and "spelling" in kinds and len(lw) >= 4:  # words run together (OCR)
            splits, apart = run_together(word, vocabulary)
            if splits and not any(reading_distance(word, w, vocabulary) <= apart for w in options):
                out += [  # read apart only where no single word is as near
                    Candidate("spelling", m.start(), m.end(), word, _case_like(word, " ".join(parts)))
                    for parts in splits
                ]
        if "recognition" in kinds:
            out += _joins(text, matches, index, vocabulary)
        if "terminology" in kinds and 2 <= len(lw) <= 5:
            tier = "known" if correct else "unknown"
            expansions = {
                w
                for w in same_number(lw, set(vocabulary.expansions(lw)))
                if len(w) >= len(lw) + 2 and same_polarity(lw, w) and not is_protected_word(w)
            }
            if not correct:  # shorthand is not read against a nearer word it contrasts with (``ls``: ``is``)
                nearer = {w for w in vocabulary.near(lw, 1) if admissible(lw, w)}
                expansions = _without_contrasts(lw, expansions | nearer, vocabulary, _opens_question(text, m)) - nearer
            out += [
                Candidate("terminology", m.start(), m.end(), word, _case_like(word, w), tier)
                for w in sorted(expansions)
            ]
    if "recognition" in kinds:  # a filler phrase is dropped with the space after it
        for a, b in _filler_phrases(text):
            end = b + (text[b : b + 1] == " ")
            out.append(Candidate("recognition", a, end, text[a:end], ""))
    if "distractor" in kinds:
        out += _distractor_candidates(text)
    return _dedupe(out)


#: The question words a misspelling is never read across (``describe``, ``name``, ``list`` open questions too).
_WH_WORDS = frozenset(w for w in OPENERS if w.startswith("wh") or w == "how")


def _contrast(a: str, b: str, opens: bool) -> bool:
    """Whether reading a word as ``a`` or as ``b`` says different things, beyond spelling: opposite polarity
    (``normal`` / ``abnormal``, ``hypo-`` / ``hyper-``), two question words (``where`` / ``when``), a question
    word and another word (``where`` / ``here``); auxiliaries count as question words only where the word
    opens the question (``ls the liver ...``: ``is``, not ``lesion``)."""
    asks = _WH_WORDS | AUXILIARIES if opens else _WH_WORDS
    return a != b and (not same_polarity(a, b) or a in asks or b in asks)


def _without_contrasts(word: str, options: set[str], vocabulary: Vocabulary, opens: bool = False) -> set[str]:
    """``options`` for the unknown ``word`` without any that another option *nearer* to ``word`` contrasts
    with (:func:`_contrast`): the shorthand ``ls`` opening a question may be ``is`` (one edit), not ``lesion``
    or ``lungs``; an expansion that says the same as the nearer words stays (``pt``: ``patient``)."""
    distance = {w: reading_distance(word, w, vocabulary) for w in options}
    return {
        w
        for w in options
        if not any(distance[v] < distance[w] and _contrast(v, w, opens) for v in options)
    }


def _opens_question(text: str, m: re.Match[str]) -> bool:
    """Whether the word ``m`` of ``text`` is the first word of its sentence."""
    return bool(_SENTENCE_START.search(text[: m.start()]))


@functools.lru_cache(maxsize=4096)
def _sound_alikes(word: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    lw = word.lower()
    if len(lw) < 3:
        return ()
    options = set(vocabulary.near(lw, 2)) | set(vocabulary.sounds_like(lw)) | set(vocabulary.sounds_near(lw))
    return tuple(sorted(w for w in options if admissible(lw, w) and is_sound_alike(lw, w)))


def sound_alikes(word: str, vocabulary: Vocabulary) -> list[str]:
    """The known words a correct ``word`` could have been misheard for (the recognition specialist's
    ``sound-alike`` tier): within two edits, sharing a phonetic key or one sound apart
    (:meth:`~monai_imc.model_vocabulary.Vocabulary.sounds_near`), and sounding alike
    (:func:`monai_imc.vocabulary.sounds_alike`; a plural is not a sound-alike of its singular)."""
    return list(_sound_alikes(word, vocabulary))


def _joins(
    text: str, matches: Sequence[re.Match[str]], index: int, vocabulary: Vocabulary
) -> list[Candidate]:
    """Two or three words from ``matches[index]`` on, joined into a known word they form or sound like."""
    out: list[Candidate] = []
    first = matches[index]
    if is_protected_word(first.group()) or has_digit(first.group()):
        return out
    joined = first.group().lower()
    for prev, nxt in zip(matches[index : index + 2], matches[index + 1 : index + 3]):
        if (
            text[prev.end() : nxt.start()] not in (" ", "-")
            or is_protected_word(nxt.group())
            or has_digit(nxt.group())
        ):
            break
        joined += nxt.group().lower()
        span = text[first.start() : nxt.end()]
        pieces = {m.group().lower() for m in matches[index : index + 3]}
        targets = (
            [joined] if joined in vocabulary else [w for w in vocabulary.sounds_like(joined) if len(w) >= 5]
        )
        targets = [w for w in targets if w not in pieces]  # ``image is`` -> ``image`` deletes a word
        out += [
            Candidate(
                "recognition", first.start(), nxt.end(), span, _case_like(first.group(), w), "sound-alike"
            )
            for w in targets
        ]
    return out


def _distractor_candidates(text: str) -> list[Candidate]:
    stripped = text.strip()
    sentences = [s for s in _SENTENCE_END.split(stripped) if s]
    questions = [s for s in sentences if s.rstrip().endswith("?")]
    if len(sentences) < 2 or len(questions) != 1:
        return []
    start = text.index(questions[0])
    return [Candidate("distractor", 0, len(text), text, text[start : start + len(questions[0])])]


def _dedupe(candidates: list[Candidate]) -> list[Candidate]:
    seen: set[tuple[int, int, str]] = set()
    out = []
    for c in candidates:
        key = (c.start, c.end, c.after)
        if key not in seen and c.after != c.before:
            seen.add(key)
            out.append(c)
    return out


def apply_candidates(text: str, candidates: Sequence[Candidate]) -> str:
    """``text`` with several non-overlapping edits applied (overlapping ones after the first are skipped)."""
    chosen: list[Candidate] = []
    for c in candidates:
        if all(c.end <= o.start or c.start >= o.end for o in chosen):
            chosen.append(c)
    out = text
    for c in sorted(chosen, key=lambda c: c.start, reverse=True):
        out = out[: c.start] + c.after + out[c.end :]
    return " ".join(out.split())

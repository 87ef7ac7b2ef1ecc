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
  :func:`monai_imc.lexicon.looks_misread`) becomes what it reads as (:func:`ocr_readings`), and nothing else;
  the plural of another option is not proposed for a word that does not end in ``s`` (``orqan`` -> ``organ``,
  not ``organs``); words run together are read apart (:func:`run_together`: ``isused`` -> ``is used``,
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
from monai_imc.lexicon import OCR_DIGIT_LOOKALIKES, is_protected_word, looks_misread
from monai_imc.model_vocabulary import Vocabulary, damerau_distance
from monai_imc.vocabulary import sounds_alike

__all__ = [
    "FILLERS",
    "GLYPH_LOOKALIKES",
    "KINDS",
    "TIERS",
    "WORD",
    "Candidate",
    "apply_candidates",
    "filler_spans",
    "is_correct",
    "is_editable",
    "is_filler",
    "ocr_readings",
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

#: Short English function words: correct whether or not the model's questions hold them (the clinical
#: vocabulary vouches only for 4+ letters). Without this, ``Rule out pneumothorax`` had its ``out``, which
#: no training question holds, read as shorthand and expanded to ``obstruction``. The sound-alikes the
#: ASR noise writes (``buy``, ``bee``, ``sea``, ``our``) are not among them: they stay repairable.
FUNCTION_WORDS: frozenset[str] = frozenset({
    "a", "am", "an", "and", "any", "are", "as", "at", "be", "but", "by", "can", "did", "do", "due", "for",
    "had", "has", "he", "her", "him", "his", "how", "if", "in", "is", "it", "its", "may", "me", "my", "nor",
    "now", "of", "off", "on", "or", "out", "per", "she", "so", "the", "to", "up", "us", "via", "was", "we",
    "who", "why", "yet", "you"
})

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


#: Prefixes that invert a word's meaning (``unhealthy``, ``abnormal``, ``nonspecific``): an edit never adds or
#: removes one.
POLARITY_PREFIXES: tuple[str, ...] = ("un", "non", "ab", "dis", "in", "im", "ir", "a", "anti", "de")


#: Prefixes of opposite meaning (``hypoinflation`` / ``hyperinflation``): an edit never swaps one for the other.
OPPOSING_PREFIXES: tuple[tuple[str, str], ...] = (
    ("hypo", "hyper"),
    ("hypo", "hypr"),
    ("pre", "post"),
    ("intra", "extra"),
    ("sub", "supra"),
    ("in", "ex"),
    ("endo", "exo"),
    ("micro", "macro"),
    ("hyper", "hypr"),
)


def _same_polarity(a: str, b: str) -> bool:
    """False when one word is the other with a meaning-inverting prefix added (``healthy`` / ``unhealthy``) or
    with an opposite prefix (``hypoinflation`` / ``hyperinflation``)."""
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    if any(long == p + short for p in POLARITY_PREFIXES):
        return False
    for x, y in OPPOSING_PREFIXES:
        for one, other in ((a, b), (b, a)):
            if one.startswith(x) and other.startswith(y) and one[len(x) :][:3] == other[len(y) :][:3]:
                return False
    return True


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


def _max_distance(word: str) -> int:
    return 1 if len(word) <= 4 else 2


def is_correct(word: str, vocabulary: Vocabulary, clinical: Container[str] | None = None) -> bool:
    """Whether ``word`` is a correct word: the model knows it, it is a short English function word
    (:data:`FUNCTION_WORDS`), or the clinical vocabulary holds it (4+ letters)."""
    lw = word.lower()
    if lw in FILLERS:
        return False
    if lw in vocabulary or lw in FUNCTION_WORDS:
        return True
    return clinical is not None and len(lw) >= MIN_CLINICAL_LENGTH and lw in clinical


def is_editable(text: str, match: re.Match[str], vocabulary: Vocabulary) -> bool:
    """Whether the specialists may edit the word ``match`` of ``text`` (a :data:`WORD` match): not a protected
    word, not a token with a digit (``3cm``, ``T2``) unless its letters were misread as digits and it reads as
    a known word (:func:`ocr_readings`: ``1ung``), not an acronym the vocabulary does not know (a site's or a
    device's name)."""
    word = match.group()
    if _has_digit(word):  # a misread word only, and only into what it reads as
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
        if _has_digit(word):  # letters misread as digits: only what the word reads as
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
            options = set(vocabulary.near(lw, 1 if correct else _max_distance(lw)))
            if not correct:  # an OCR misreading of look-alike glyphs may be more than two edits away
                options |= set(ocr_readings(word, vocabulary))
            if len(lw) >= 3:
                options |= set(vocabulary.sounds_like(lw))
            if correct:
                options |= set(sound_alikes(lw, vocabulary))
            else:
                options = _same_number(lw, options) - _dropping_a_word(lw, options, vocabulary)
                # nearest before admissible: a farther word never stands in for a nearer protected one
                options = _nearest(word, options, vocabulary)
            for w in sorted(options):
                if not _admissible(lw, w):
                    continue
                tier = "unknown" if not correct else "sound-alike" if _sound_alike(lw, w) else "known"
                out.append(Candidate(kind, m.start(), m.end(), word, _case_in(text, m, w), tier))
        if kind == "spelling" and "spelling" in kinds and len(lw) >= 4:  # words run together (OCR)
            splits, apart = run_together(word, vocabulary)
            if splits and not any(_reading_distance(word, w, vocabulary) <= apart for w in options):
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
                for w in _same_number(lw, set(vocabulary.expansions(lw)))
                if len(w) >= len(lw) + 2 and _same_polarity(lw, w) and not is_protected_word(w)
            }
            if not correct:  # shorthand is not read against a nearer word it contrasts with (``ls``: ``is``)
                nearer = {w for w in vocabulary.near(lw, 1) if _admissible(lw, w)}
                expansions = _without_contrasts(lw, expansions | nearer, _opens_question(text, m)) - nearer
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


def _plural_of(word: str, other: str) -> bool:
    """Whether ``word`` is ``other`` in the plural (or possessive): ``organs``, ``masses``, ``organ's``."""
    return any(word == other + end for end in ("s", "es", "'s"))


def _same_number(word: str, options: set[str]) -> set[str]:
    """``options`` without the plurals of other options when ``word`` does not end in ``s``: a repair of
    ``orqan`` or ``org`` may be ``organ``, not ``organs`` (how many is a fact of the text, not the repair's)."""
    if word.endswith("s"):
        return options
    return {w for w in options if not any(_plural_of(w, v) for v in options)}


#: The question words a misspelling is never read across (``describe``, ``name``, ``list`` open questions too).
_WH_WORDS = frozenset(w for w in OPENERS if w.startswith("wh") or w == "how")


def _contrast(a: str, b: str, opens: bool) -> bool:
    """Whether reading a word as ``a`` or as ``b`` says different things, beyond spelling: opposite polarity
    (``normal`` / ``abnormal``, ``hypo-`` / ``hyper-``), two question words (``where`` / ``when``), a question
    word and another word (``where`` / ``here``); auxiliaries count as question words only where the word
    opens the question (``ls the liver ...``: ``is``, not ``lesion``)."""
    asks = _WH_WORDS | AUXILIARIES if opens else _WH_WORDS
    return a != b and (not _same_polarity(a, b) or a in asks or b in asks)


def _reading_distance(word: str, other: str, vocabulary: Vocabulary) -> int:
    """How far the misspelt ``word`` is from reading ``other``: edits (Damerau), and one for a misreading
    (:func:`ocr_readings`: ``tlie`` -> ``the``, ``rnass`` -> ``mass``) however many letters it changes."""
    if other in _ocr_readings(word, vocabulary):
        return 1
    return damerau_distance(word.lower(), other, 8)


def _nearest(word: str, options: set[str], vocabulary: Vocabulary) -> set[str]:
    """The ``options`` nearest to the misspelt ``word`` (:func:`_reading_distance`): a misspelling is read
    as the words it is fewest edits from (``patentt``: ``patent``, not ``patient``; ``ahnormal``:
    ``abnormal``, not ``normal``), and the model's likelihood chooses among those."""
    if not options:
        return options
    distance = {w: _reading_distance(word, w, vocabulary) for w in options}
    return {w for w in options if distance[w] == min(distance.values())}


def _without_contrasts(word: str, options: set[str], opens: bool = False) -> set[str]:
    """``options`` for the unknown ``word`` without any that another option *nearer* to ``word`` contrasts
    with (:func:`_contrast`): the shorthand ``ls`` opening a question may be ``is`` (one edit), not ``lesion``
    or ``lungs``; an expansion that says the same as the nearer words stays (``pt``: ``patient``)."""
    distance = {w: damerau_distance(word, w, 8) for w in options}
    return {
        w
        for w in options
        if not any(distance[v] < distance[w] and _contrast(v, w, opens) for v in options)
    }


def _opens_question(text: str, m: re.Match[str]) -> bool:
    """Whether the word ``m`` of ``text`` is the first word of its sentence."""
    return bool(_SENTENCE_START.search(text[: m.start()]))


#: Most readings of one run-together word that are proposed (the nearest first).
MAX_SPLITS = 8

#: Longest word read apart (three long words run together; the pieces to read grow with its square, so a
#: run-on line of text, which is not two or three words, is left whole).
MAX_RUN_TOGETHER = 30


def run_together(word: str, vocabulary: Vocabulary) -> tuple[list[tuple[str, ...]], int]:
    """Readings of ``word`` as two or three words that optical recognition ran together (``isused``,
    ``tbisimage``, ``Istheredamage``), and how far they are from it: every piece of 2+ letters read as a
    known word (:func:`_piece_readings`: itself, a misreading of it, or a word one or two edits away), one
    edit in all at most for a word of up to 7 letters (``oberes`` is not ``be pres``), two for a longer one.
    A word longer than :data:`MAX_RUN_TOGETHER` is not read apart. Only the nearest readings are kept
    (``diseasesare``: ``diseases are``, not ``disease are``), the fewest words first, :data:`MAX_SPLITS` at
    most; no reading: an empty list."""
    if len(word) > MAX_RUN_TOGETHER:
        return [], 0
    found: dict[tuple[str, ...], int] = {}
    budget = 1 if len(word) < 8 else 2  # a split point is a choice too: a short word is read apart with one edit
    for i in range(2, len(word) - 1):
        head = _piece_readings(word[:i], vocabulary)
        if not head:
            continue
        tails = [((w,), d) for w, d in _piece_readings(word[i:], vocabulary)]
        if len(word) - i >= 4:  # a third word (``is`` + ``the`` + ``main``)
            tails += [
                ((a, b), da + db)
                for j in range(i + 2, len(word) - 1)
                for a, da in _piece_readings(word[i:j], vocabulary)
                for b, db in _piece_readings(word[j:], vocabulary)
            ]
        for w, d in head:
            for rest, e in tails:
                parts = (w, *rest)
                if d + e <= budget and d + e < found.get(parts, 99):
                    found[parts] = d + e
    if not found:
        return [], 0
    nearest = min(found.values())
    return sorted((p for p in found if found[p] == nearest), key=lambda p: (len(p), p))[:MAX_SPLITS], nearest


@functools.lru_cache(maxsize=8192)
def _piece_readings(piece: str, vocabulary: Vocabulary) -> tuple[tuple[str, int], ...]:
    """What one piece of a run-together word reads as (lower case), with its distance: itself when known;
    else the known words it is a misreading of (:func:`ocr_readings`, which reads a capital ``I`` as an
    ``l``), or a word within one edit (pieces of 3-4 letters) or two (5+ letters). Two letters are read only
    as themselves."""
    lp = piece.lower()
    if lp in vocabulary or lp in FUNCTION_WORDS:
        return ((lp, 0),)
    if len(lp) < 3:
        return ()
    readings = set(ocr_readings(piece, vocabulary)) if not _has_digit(piece) or looks_misread(piece) else set()
    readings |= set(vocabulary.near(lp, 1 if len(lp) <= 4 else 2))
    readings |= {w for w in FUNCTION_WORDS if damerau_distance(lp, w, 2) <= 1}
    return tuple(
        sorted((w, _reading_distance(piece, w, vocabulary)) for w in readings if len(w) >= 2 and _admissible(lp, w))
    )


def _dropping_a_word(word: str, options: set[str], vocabulary: Vocabulary) -> set[str]:
    """The ``options`` of a misspelt ``word`` that are a piece of it with another known word cut off
    (``isused`` -> ``used``, ``includedin`` -> ``included``): the words ran together, and that repair would
    delete one (:func:`run_together` reads them apart)."""
    return {
        w
        for w in options
        if len(word) - len(w) >= 2
        and (
            (word.startswith(w) and _piece_readings(word[len(w) :], vocabulary))
            or (word.endswith(w) and _piece_readings(word[: -len(w)], vocabulary))
        )
    }


def _admissible(word: str, other: str) -> bool:
    """Whether ``word`` may become ``other``: same polarity, not a protected word, never a single letter
    (``cx`` -> ``x``)."""
    return _same_polarity(word, other) and not is_protected_word(other) and len(other) >= 2


#: Most letter readings of one misread word that are tried: its digits read as letters (each look-alike
#: digit has one or two), then each of those through look-alike glyphs.
_MAX_READINGS = 32
_MAX_GLYPH_VARIANTS = 4096

#: Glyphs optical recognition reads as one another (``rn``/``m``, ``li``/``h``, ``cl``/``d``, ``vv``/``w``,
#: ``ri``/``n``, a capital ``I`` for an ``l``): a misread word is read back through at most two of them.
GLYPH_LOOKALIKES: dict[str, tuple[str, ...]] = {
    "rn": ("m",), "m": ("rn",), "li": ("h",), "h": ("li",), "cl": ("d",), "d": ("cl",), "vv": ("w",),
    "w": ("vv",), "ri": ("n",), "n": ("ri",), "I": ("l",),
}


def _glyph_variants(word: str, depth: int = 2) -> set[str]:
    """``word`` and its readings through at most ``depth`` glyph look-alikes (:data:`GLYPH_LOOKALIKES`)."""
    seen, frontier = {word}, {word}
    for _ in range(depth):
        found = set()
        for w in frontier:
            for glyph, options in GLYPH_LOOKALIKES.items():
                i = w.find(glyph)
                while i != -1:
                    found.update(w[:i] + o + w[i + len(glyph) :] for o in options)
                    i = w.find(glyph, i + 1)
        frontier = found - seen
        seen |= frontier
        if len(seen) > _MAX_GLYPH_VARIANTS:
            break
    return seen


@functools.lru_cache(maxsize=4096)
def _ocr_readings(token: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    lw = token.lower()
    digit_free = [""]
    for ch in token:
        options = OCR_DIGIT_LOOKALIKES.get(ch, ch)
        digit_free = [r + c for r in digit_free for c in options][:_MAX_READINGS]
    readings = {v.lower() for r in digit_free for v in _glyph_variants(r)} - {lw}
    known = sorted(
        r for r in readings if len(r) >= 2 and (r in vocabulary or r in FUNCTION_WORDS) and _admissible(lw, r)
    )
    if known:
        return tuple(known)
    near = {w for r in readings if len(r) >= 5 for w in vocabulary.near(r, 1)}
    return tuple(sorted(w for w in near if _admissible(lw, w)))


def ocr_readings(token: str, vocabulary: Vocabulary) -> list[str]:
    """The known words a word misread by optical recognition stands for: each look-alike digit read as its
    letters (``1ung`` -> ``lung``, ``th1s`` -> ``this``) and at most two look-alike glyphs read back
    (``tlie`` -> ``the``, ``rnodalitv`` ... ``Iung`` -> ``lung``), the readings the vocabulary (or
    :data:`FUNCTION_WORDS`) holds; when none does, the known words one edit from a reading of 5 letters or
    more (``hea1thv`` -> ``healthy``, ``rnodalitv`` -> ``modality``)."""
    return list(_ocr_readings(token, vocabulary))


@functools.lru_cache(maxsize=4096)
def _sound_alikes(word: str, vocabulary: Vocabulary) -> tuple[str, ...]:
    lw = word.lower()
    if len(lw) < 3:
        return ()
    options = set(vocabulary.near(lw, 2)) | set(vocabulary.sounds_like(lw)) | set(vocabulary.sounds_near(lw))
    return tuple(sorted(w for w in options if _admissible(lw, w) and _sound_alike(lw, w)))


def sound_alikes(word: str, vocabulary: Vocabulary) -> list[str]:
    """The known words a correct ``word`` could have been misheard for (the recognition specialist's
    ``sound-alike`` tier): within two edits, sharing a phonetic key or one sound apart
    (:meth:`~monai_imc.model_vocabulary.Vocabulary.sounds_near`), and sounding alike
    (:func:`monai_imc.vocabulary.sounds_alike`; a plural is not a sound-alike of its singular)."""
    return list(_sound_alikes(word, vocabulary))


def _sound_alike(a: str, b: str) -> bool:
    """A sound-alike that is not the same word in another number or form (``nodule`` / ``nodules``,
    ``normal`` / ``normally``, ``isointense`` / ``intense``: a correct word's number and form are facts of
    the text, so that edit asks the overwhelming margin)."""
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    return not _plural_of(long, short) and not _forms_of_one_word(a, b) and sounds_alike(a, b)


#: Endings of one stem's forms (``normal``/``normally``, ``signify``/``signifies``, ``artery``/``arterial``,
#: ``vertebrae``/``vertebral``, ``dense``/``dens``, ``hyperattenuating``/``hyperattenuation``).
_FORM_ENDINGS = frozenset({
    "", "a", "ae", "al", "ally", "ation", "ations", "d", "e", "ed", "en", "er", "es", "est", "ial", "ic",
    "ies", "ing", "ion", "ions", "ities", "ity", "ive", "ly", "ment", "ness", "ous", "s", "um", "us", "y",
})


def _forms_of_one_word(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are forms of one word: one stem of 4+ letters with two endings of
    :data:`_FORM_ENDINGS`, or one word with a prefix of 2+ letters added (``isointense`` / ``intense``).
    ``chess`` / ``chest`` and ``imagine`` / ``image`` are not (speech recognition's mishearings)."""
    a, b = a.lower(), b.lower()
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    if len(long) - len(short) >= 2 and long.endswith(short):
        return True
    for n in range(4, len(short) + 1):
        if a[:n] != b[:n]:
            break
        if a[n:] in _FORM_ENDINGS and b[n:] in _FORM_ENDINGS:
            return True
    return False


def _has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _joins(
    text: str, matches: Sequence[re.Match[str]], index: int, vocabulary: Vocabulary
) -> list[Candidate]:
    """Two or three words from ``matches[index]`` on, joined into a known word they form or sound like."""
    out: list[Candidate] = []
    first = matches[index]
    if is_protected_word(first.group()) or _has_digit(first.group()):
        return out
    joined = first.group().lower()
    for prev, nxt in zip(matches[index : index + 2], matches[index + 1 : index + 3]):
        if (
            text[prev.end() : nxt.start()] not in (" ", "-")
            or is_protected_word(nxt.group())
            or _has_digit(nxt.group())
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

"""What a misspelt or misread word of clinical text reads as, for the SMS spelling specialist.

:func:`ocr_readings`: the known words a word whose letters optical recognition misread stands for (look-alike
digits and glyphs read back); :func:`reading_distance` and :func:`nearest`: how far a misspelling is from a
word (a misreading counts one edit), and the nearest of several; :func:`run_together`: two or three words
that optical recognition ran together, read apart; :func:`dropping_a_word`: the "repairs" that would delete
one of them.
"""

from __future__ import annotations

import functools

from monai_imc.lexicon import OCR_DIGIT_LOOKALIKES, looks_misread
from monai_imc.model_vocabulary import Vocabulary, damerau_distance
from monai_imc.word_relations import FUNCTION_WORDS, admissible

__all__ = [
    "GLYPH_LOOKALIKES",
    "MAX_RUN_TOGETHER",
    "MAX_SPLITS",
    "dropping_a_word",
    "has_digit",
    "max_distance",
    "nearest",
    "ocr_readings",
    "reading_distance",
    "run_together",
]


def max_distance(word: str) -> int:
    return 1 if len(word) <= 4 else 2


def has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


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
        r for r in readings if len(r) >= 2 and (r in vocabulary or r in FUNCTION_WORDS) and admissible(lw, r)
    )
    if known:
        return tuple(known)
    near = {w for r in readings if len(r) >= 5 for w in vocabulary.near(r, 1)}
    return tuple(sorted(w for w in near if admissible(lw, w)))


def ocr_readings(token: str, vocabulary: Vocabulary) -> list[str]:
    """The known words a word misread by optical recognition stands for: each look-alike digit read as its
    letters (``1ung`` -> ``lung``, ``th1s`` -> ``this``) and at most two look-alike glyphs read back
    (``tlie`` -> ``the``, ``rnodalitv`` ... ``Iung`` -> ``lung``), the readings the vocabulary (or
    :data:`~monai_imc.word_relations.FUNCTION_WORDS`) holds; when none does, the known words one edit from a reading of 5 letters or
    more (``hea1thv`` -> ``healthy``, ``rnodalitv`` -> ``modality``)."""
    return list(_ocr_readings(token, vocabulary))


def reading_distance(word: str, other: str, vocabulary: Vocabulary) -> int:
    """How far the misspelt ``word`` is from reading ``other``: edits (Damerau), and one for a misreading
    (:func:`ocr_readings`: ``tlie`` -> ``the``, ``rnass`` -> ``mass``) however many letters it changes."""
    if other in _ocr_readings(word, vocabulary):
        return 1
    return damerau_distance(word.lower(), other, 8)


def nearest(word: str, options: set[str], vocabulary: Vocabulary) -> set[str]:
    """The ``options`` nearest to the misspelt ``word`` (:func:`reading_distance`): a misspelling is read
    as the words it is fewest edits from (``patentt``: ``patent``, not ``patient``; ``ahnormal``:
    ``abnormal``, not ``normal``), and the model's likelihood chooses among those."""
    if not options:
        return options
    distance = {w: reading_distance(word, w, vocabulary) for w in options}
    return {w for w in options if distance[w] == min(distance.values())}


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
    readings = set(ocr_readings(piece, vocabulary)) if not has_digit(piece) or looks_misread(piece) else set()
    readings |= set(vocabulary.near(lp, 1 if len(lp) <= 4 else 2))
    readings |= {w for w in FUNCTION_WORDS if damerau_distance(lp, w, 2) <= 1}
    return tuple(
        sorted((w, reading_distance(piece, w, vocabulary)) for w in readings if len(w) >= 2 and admissible(lp, w))
    )


def dropping_a_word(word: str, options: set[str], vocabulary: Vocabulary) -> set[str]:
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

"""How two words of clinical text relate, for the SMS specialists: same polarity, same number, forms of one
word, sounding alike; and the short function words that are correct whatever a model knows.

A repair may fix a word's spelling or hearing, never what it says: :func:`admissible` refuses a repair that
adds or swaps a meaning-inverting prefix (``healthy`` / ``unhealthy``, ``hypo-`` / ``hyper-``) or writes a
protected word; :func:`same_number` keeps a singular singular; :func:`is_sound_alike` tells a mishearing
(``pitcher`` / ``picture``) from another form of the same word (``nodule`` / ``nodules``).
"""

from __future__ import annotations

from monai_imc.lexicon import is_protected_word
from monai_imc.vocabulary import sounds_alike

__all__ = [
    "FUNCTION_WORDS",
    "OPPOSING_PREFIXES",
    "POLARITY_PREFIXES",
    "admissible",
    "forms_of_one_word",
    "is_sound_alike",
    "plural_of",
    "same_number",
    "same_polarity",
]

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


def same_polarity(a: str, b: str) -> bool:
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


def admissible(word: str, other: str) -> bool:
    """Whether ``word`` may become ``other``: same polarity, not a protected word, never a single letter
    (``cx`` -> ``x``)."""
    return same_polarity(word, other) and not is_protected_word(other) and len(other) >= 2


def plural_of(word: str, other: str) -> bool:
    """Whether ``word`` is ``other`` in the plural (or possessive): ``organs``, ``masses``, ``organ's``."""
    return any(word == other + end for end in ("s", "es", "'s"))


def same_number(word: str, options: set[str]) -> set[str]:
    """``options`` without the plurals of other options when ``word`` does not end in ``s``: a repair of
    ``orqan`` or ``org`` may be ``organ``, not ``organs`` (how many is a fact of the text, not the repair's)."""
    if word.endswith("s"):
        return options
    return {w for w in options if not any(plural_of(w, v) for v in options)}


def is_sound_alike(a: str, b: str) -> bool:
    """A sound-alike that is not the same word in another number or form (``nodule`` / ``nodules``,
    ``normal`` / ``normally``, ``isointense`` / ``intense``: a correct word's number and form are facts of
    the text, so that edit asks the overwhelming margin)."""
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    return not plural_of(long, short) and not forms_of_one_word(a, b) and sounds_alike(a, b)


#: Endings of one stem's forms (``normal``/``normally``, ``signify``/``signifies``, ``artery``/``arterial``,
#: ``vertebrae``/``vertebral``, ``dense``/``dens``, ``hyperattenuating``/``hyperattenuation``).
_FORM_ENDINGS = frozenset({
    "", "a", "ae", "al", "ally", "ation", "ations", "d", "e", "ed", "en", "er", "es", "est", "ial", "ic",
    "ies", "ing", "ion", "ions", "ities", "ity", "ive", "ly", "ment", "ness", "ous", "s", "um", "us", "y",
})


def forms_of_one_word(a: str, b: str) -> bool:
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

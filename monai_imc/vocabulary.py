"""A clinical vocabulary beside the model's words, and the sound of a word.

SMS writes only words the model knows (:class:`monai_imc.model_vocabulary.Vocabulary`); this module says
which words are *correct* English or clinical words even when the model does not know them, so that a
correct word the model lacks (``nerve``, ``wedge``, ``hemidiaphragms``) is not "corrected" into a word it
has. The words come from:

- the system's Hunspell dictionaries, read where the distribution installs them
  (``/usr/share/hunspell``): ``en_US`` (Debian ``hunspell-en-us``) and ``en_med_glut`` (Debian
  ``hunspell-en-med``, OpenMedSpel). They are GPL-3 and never copied into the repository; when they are
  absent the vocabulary is the site list alone, with one warning in the log;
- a site's own word list (one word per line; a bundle ships ``configs/site_words.txt``).

:func:`phonetic_keys` gives a word's Metaphone and NYSIIS keys (``jellyfish``): the recognition specialist
uses them to reach the word a speech recogniser misheard (``plural`` -> ``pleural``, ``long`` -> ``lung``).

Example::

    vocab = ClinicalVocabulary.system(site_words="bundles/monai_imc_vqa/configs/site_words.txt")
    "hemidiaphragms" in vocab, sounds_alike("plural", "pleural")
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "DICTIONARY_DIRS",
    "DICTIONARY_NAMES",
    "ClinicalVocabulary",
    "phonetic_keys",
    "read_hunspell",
    "read_word_list",
    "sounds_alike",
    "system_words",
]

#: Where distributions install Hunspell dictionaries, searched in order.
DICTIONARY_DIRS: tuple[str, ...] = ("/usr/share/hunspell", "/usr/share/myspell/dicts", "/usr/share/myspell")

#: The dictionaries read (``NAME.dic``, affixes from ``NAME.aff`` or else ``en_US.aff``).
DICTIONARY_NAMES: tuple[str, ...] = ("en_US", "en_med_glut")

_ALPHA = re.compile(r"[a-z]+(?:-[a-z]+)*")


def _affix_rules(aff: Path) -> dict[str, tuple[str, bool, list[tuple[str, str, re.Pattern[str]]]]]:
    """``flag -> (PFX|SFX, cross product, [(strip, add, condition)])`` from a Hunspell ``.aff`` file."""
    rules: dict[str, tuple[str, bool, list[tuple[str, str, re.Pattern[str]]]]] = {}
    for line in aff.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] not in ("PFX", "SFX"):
            continue
        kind, flag = parts[0], parts[1]
        if flag not in rules:  # header: PFX flag Y|N count
            rules[flag] = (kind, parts[2] == "Y", [])
            continue
        if len(parts) < 5:
            continue
        strip = "" if parts[2] == "0" else parts[2]
        add = "" if parts[3] == "0" else parts[3].split("/")[0]
        condition = "." if parts[4] == "." else parts[4]
        pattern = re.compile(("^" + condition) if kind == "PFX" else (condition + "$"))
        rules[flag][2].append((strip, add, pattern))
    return rules


def _apply(word: str, kind: str, rule: tuple[str, str, re.Pattern[str]]) -> str | None:
    strip, add, pattern = rule
    if not pattern.search(word):
        return None
    if kind == "SFX":
        if strip and not word.endswith(strip):
            return None
        return (word[: len(word) - len(strip)] if strip else word) + add
    if strip and not word.startswith(strip):
        return None
    return add + word[len(strip) :]


def read_hunspell(dic: str | Path, aff: str | Path | None = None) -> set[str]:
    """The lower-case words of a Hunspell dictionary, with the forms its prefix and suffix flags make.

    Entries that are not all lower case (acronyms such as ``NL``, names) are left out: a word SMS should
    not correct is a common word.

    Args:
        dic: the ``.dic`` file (a count line, then ``word/FLAGS`` lines; indented comment lines are skipped).
        aff: its ``.aff`` file (single-character flags); ``None``: the words as listed.

    Raises:
        FileNotFoundError: ``dic`` (or a given ``aff``) does not exist.
    """
    dic = Path(dic)
    if not dic.is_file():
        raise FileNotFoundError(f"{dic}: dictionary not found")
    if aff is not None and not Path(aff).is_file():
        raise FileNotFoundError(f"{aff}: affix file not found")
    rules = _affix_rules(Path(aff)) if aff is not None else {}
    words: set[str] = set()
    for line in dic.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line or line[0].isspace():
            continue
        stem, _, flags = line.strip().partition("/")
        if not _ALPHA.fullmatch(stem):
            continue
        words.add(stem)
        prefixed = [stem]
        for flag in flags:
            kind, cross, forms = rules.get(flag, ("", False, []))
            for rule in forms:
                form = _apply(stem, kind, rule)
                if form:
                    words.add(form)
                    if kind == "PFX" and cross:
                        prefixed.append(form)
        for flag in flags:  # suffixes of the prefixed forms (cross products)
            kind, cross, forms = rules.get(flag, ("", False, []))
            if kind != "SFX" or not cross:
                continue
            for base in prefixed[1:]:
                for rule in forms:
                    form = _apply(base, kind, rule)
                    if form:
                        words.add(form)
    return {w for w in words if _ALPHA.fullmatch(w)}


def read_word_list(path: str | Path) -> set[str]:
    """The lower-case words of a word list (one per line; ``#`` starts a comment).

    Raises:
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: word list not found")
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip().lower()
        if word:
            out.add(word)
    return out


@functools.lru_cache(maxsize=4)
def system_words(
    dirs: tuple[str, ...] = DICTIONARY_DIRS, names: tuple[str, ...] = DICTIONARY_NAMES
) -> frozenset[str]:
    """The words of the system's Hunspell dictionaries (read once per process).

    A dictionary that is not installed is skipped with one warning (``apt-get install hunspell-en-us
    hunspell-en-med``); none installed gives an empty set.
    """
    words: set[str] = set()
    missing = []
    for name in names:
        folder = next((Path(d) for d in dirs if (Path(d) / f"{name}.dic").is_file()), None)
        if folder is None:
            missing.append(name)
            continue
        aff = folder / f"{name}.aff"
        if not aff.is_file():
            aff = folder / "en_US.aff"  # en_med_glut is an add-on to en_US and uses its flags
        words |= read_hunspell(folder / f"{name}.dic", aff if aff.is_file() else None)
    if missing:
        logger.warning(
            "Hunspell dictionaries %s not found in %s: SMS's clinical vocabulary is the site word list "
            "and the model's words only (apt-get install hunspell-en-us hunspell-en-med)",
            ", ".join(missing),
            ", ".join(dirs),
        )
    return frozenset(words)


class ClinicalVocabulary:
    """Words known to be correct: the system's Hunspell dictionaries plus a site's word list.

    Args:
        words: the words (any case; kept lower case).
        sources: where they came from (for reports).
    """

    def __init__(self, words: Iterable[str], sources: Sequence[str] = ()) -> None:
        self.words: frozenset[str] = frozenset(w.lower() for w in words if w)
        self.sources = tuple(sources)

    @classmethod
    def system(
        cls,
        site_words: str | Path | None = None,
        dirs: Sequence[str] = DICTIONARY_DIRS,
        names: Sequence[str] = DICTIONARY_NAMES,
    ) -> ClinicalVocabulary:
        """The system dictionaries (:func:`system_words`) plus ``site_words`` (a word list file).

        Raises:
            FileNotFoundError: ``site_words`` was given and does not exist.
        """
        words = set(system_words(tuple(dirs), tuple(names)))
        sources = [f"hunspell:{n}" for n in names if any((Path(d) / f"{n}.dic").is_file() for d in dirs)]
        if site_words is not None:
            words |= read_word_list(site_words)
            sources.append(str(site_words))
        return cls(words, sources)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self.words

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"ClinicalVocabulary({len(self.words)} words from {', '.join(self.sources) or 'nothing'})"


@functools.lru_cache(maxsize=65536)
def phonetic_keys(word: str) -> tuple[str, str]:
    """The Metaphone and NYSIIS keys of ``word`` (letters only; ``("", "")`` for none)."""
    import jellyfish

    letters = "".join(ch for ch in word.lower() if "a" <= ch <= "z")
    if not letters:
        return "", ""
    return jellyfish.metaphone(letters), jellyfish.nysiis(letters)


def sounds_alike(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` sound alike: both their Metaphone and NYSIIS keys agree, or one agrees and the
    words are at most two edits apart (``waited`` / ``weighted``; not ``flat`` / ``fluid``), or the words
    start alike, are at most two edits apart and one's Metaphone key is the other's with one sound more at
    its end (a final sound heard or lost: ``chess`` / ``chest``, ``content`` / ``contain``, ``imagine`` /
    ``image``; not ``safe`` / ``same``, nor a word and the same word with an ending, ``large`` / ``larger``),
    or the words start alike and one sound was heard otherwise (:func:`_sound_heard_otherwise`:
    ``pitcher`` / ``picture``). Keys of fewer than two characters never count."""
    import jellyfish

    keys_a, keys_b = phonetic_keys(a), phonetic_keys(b)
    same = [x == y and len(x) >= 2 for x, y in zip(keys_a, keys_b)]
    if all(same):
        return True
    close = jellyfish.damerau_levenshtein_distance(a.lower(), b.lower()) <= 2
    if any(same):
        return close
    short, long = sorted((keys_a[0], keys_b[0]), key=len)
    ending = len(short) >= 2 and len(long) == len(short) + 1 and long.startswith(short)
    shorter, longer = sorted((a.lower(), b.lower()), key=len)
    if shorter[:1] != longer[:1] or longer.startswith(shorter):
        return False
    return (close and ending) or _sound_heard_otherwise(shorter, longer, keys_a, keys_b)


def _sound_heard_otherwise(a: str, b: str, keys_a: tuple[str, str], keys_b: tuple[str, str]) -> bool:
    """One sound of the word dropped, added or swapped with its neighbour: a Metaphone key of four or more
    characters with one sound more or less than the other's, or a NYSIIS key of five or more with two
    neighbouring sounds swapped, the words at most three edits apart (``content`` / ``contain``,
    ``mortality`` / ``modality``, ``pitcher`` / ``picture``). A sound *replaced* is not enough: ``special``
    / ``spinal``, ``major`` / ``matter``, ``better`` / ``bigger`` are other words."""
    import jellyfish

    if jellyfish.damerau_levenshtein_distance(a, b) > 3:
        return False
    (meta_a, nys_a), (meta_b, nys_b) = keys_a, keys_b
    short, long = sorted((meta_a, meta_b), key=len)
    if len(short) >= 4 and len(long) == len(short) + 1 and jellyfish.levenshtein_distance(short, long) == 1:
        return True
    return (
        min(len(nys_a), len(nys_b)) >= 5
        and len(nys_a) == len(nys_b)
        and jellyfish.damerau_levenshtein_distance(nys_a, nys_b) == 1
        and jellyfish.hamming_distance(nys_a, nys_b) == 2
    )

"""The words a model knows: its tokenizer's whole words and its word list, with the look-ups the SMS
specialists need (near spellings, sound-alikes, shorthand expansions).

SMS writes only words the model knows (:class:`Vocabulary`); :class:`monai_imc.vocabulary.ClinicalVocabulary`
says which other words are correct English or clinical words, and tells a tokenizer's words from its word
pieces (:meth:`Vocabulary.from_tokenizer`). The candidate repairs built on both are in
:mod:`monai_imc.text_candidates`.

Example::

    vocab = Vocabulary.from_model(model, dictionary=ClinicalVocabulary.system())
    vocab.near("lnug", 1), vocab.sounds_like("plural"), vocab.expansions("abnl")
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any

from monai_imc.vocabulary import phonetic_keys, sounds_alike

__all__ = ["SHORT_PIECE", "WORD_LIST", "Vocabulary", "damerau_distance"]

#: The word list a model folder may hold beside its weights (one known word per line).
WORD_LIST = "words.txt"

#: Tokenizer pieces this short are words only when the model's own word list holds them (see
#: :meth:`Vocabulary.from_tokenizer`).
SHORT_PIECE = 3


def damerau_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance of ``a`` and ``b`` (a transposition costs 1), capped at ``limit``."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[-1], limit)


def _deletes(word: str, depth: int) -> set[str]:
    """Every string made from ``word`` by deleting up to ``depth`` letters (the SymSpell index keys)."""
    out, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


class Vocabulary:
    """Words the model knows, with an index for near-spelling and abbreviation look-ups.

    Args:
        words: known words (case is ignored; words shorter than ``min_length`` are dropped).
        min_length: shortest word kept.
        max_distance: the largest edit distance searched (1 or 2).
    """

    def __init__(self, words: Iterable[str], min_length: int = 1, max_distance: int = 2) -> None:
        self.words: frozenset[str] = frozenset(
            w.lower() for w in words if len(w) >= min_length and w.isalpha()
        )
        if not self.words:
            raise ValueError("a vocabulary needs at least one word")
        self.max_distance = max_distance
        self._index: dict[str, set[str]] = defaultdict(set)
        for w in self.words:
            for key in _deletes(w, max_distance):
                self._index[key].add(w)
        self._by_initial: dict[str, list[str]] = defaultdict(list)
        for w in sorted(self.words):
            self._by_initial[w[0]].append(w)
        self._by_sound: dict[str, set[str]] | None = None

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        extra_words: Iterable[str] = (),
        min_length: int = 1,
        dictionary: Container[str] | None = None,
    ) -> Vocabulary:
        """The whole words of a tokenizer's vocabulary (byte-level ``Ġword`` and SentencePiece ``▁word`` tokens).

        A tokenizer's word-initial pieces are not all words (``Ġimag``, ``Ġabdom``, ``Ġimg``): with a
        ``dictionary`` (the clinical vocabulary), a piece counts only when the dictionary holds it, and a
        piece of :data:`SHORT_PIECE` letters or fewer (``pt``, ``loc``: dictionary words that are mostly
        shorthand in clinical text) only when ``extra_words`` holds it too, where there are any.

        Args:
            tokenizer: a transformers tokenizer (anything with ``get_vocab()``).
            extra_words: a site's or the model's own word list (e.g. its training questions' words), added
                as known words.
            min_length: shortest word kept.
            dictionary: words known to be correct (see above); ``None``: every word-initial piece counts.
        """
        listed = {w.lower() for w in extra_words}
        words = set(listed)
        for token in tokenizer.get_vocab():
            word = token.lstrip("Ġ▁")
            if word != token and word.isalpha() and word.isascii():
                lw = word.lower()
                if dictionary is None or (
                    lw in dictionary and (len(lw) > SHORT_PIECE or not listed or lw in listed)
                ):
                    words.add(lw)
        return cls(words, min_length=min_length)

    @classmethod
    def from_model(
        cls, model: Any, word_list: str | Path | None = None, dictionary: Container[str] | None = None
    ) -> Vocabulary:
        """The words of ``model``'s tokenizer plus a word list (one word per line).

        Args:
            model: a loaded model with a ``tokenizer`` (the local adapters).
            word_list: a file of known words; default: ``words.txt`` in the model's folder when there is
                one (the reference model ships the words of its training questions there).
            dictionary: the clinical vocabulary that tells the tokenizer's words from its word pieces (see
                :meth:`from_tokenizer`).

        Raises:
            ValueError: the model has no tokenizer.
            FileNotFoundError: ``word_list`` was given and does not exist.
        """
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(f"{type(model).__name__} has no tokenizer to take words from; pass a Vocabulary")
        if word_list is None:
            default = Path(str(getattr(model, "name", ""))) / WORD_LIST
            word_list = default if default.is_file() else None
        extra: list[str] = []
        if word_list is not None:
            path = Path(word_list)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: word list not found")
            extra = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
        return cls.from_tokenizer(tokenizer, extra_words=extra, dictionary=dictionary)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self.words

    def __len__(self) -> int:
        return len(self.words)

    def near(self, word: str, max_distance: int) -> list[str]:
        """Known words within ``max_distance`` edits of ``word`` (not the word itself), sorted."""
        lw = word.lower()
        depth = min(max_distance, self.max_distance)
        found: set[str] = set()
        for key in _deletes(lw, depth):
            found |= self._index.get(key, set())
        return sorted(w for w in found if w != lw and damerau_distance(lw, w, depth + 1) <= depth)

    def sounds_like(self, word: str) -> list[str]:
        """Known words of 3 letters or more that share a Metaphone or NYSIIS key with ``word``, sorted."""
        if self._by_sound is None:
            index: dict[str, set[str]] = defaultdict(set)
            for w in self.words:
                if len(w) >= 3:
                    for tag, key in zip("mn", phonetic_keys(w)):
                        if len(key) >= 2:
                            index[tag + key].add(w)
            self._by_sound = index
        lw = word.lower()
        found: set[str] = set()
        for tag, key in zip("mn", phonetic_keys(lw)):
            if len(key) >= 2:
                found |= self._by_sound.get(tag + key, set())
        return sorted(w for w in found if w != lw and damerau_distance(lw, w, 4) <= 3)

    def sounds_near(self, word: str) -> list[str]:
        """Known words of 3 letters or more that start with ``word``'s letter, are at most three edits from it
        and sound like it (:func:`~monai_imc.vocabulary.sounds_alike`: ``picture`` for ``pitcher``, one
        sound heard otherwise), sorted. A scan of the words with that first letter (the model's words: about
        a thousand in all)."""
        import jellyfish

        lw = word.lower()
        return sorted(
            w
            for w in self._by_initial.get(lw[:1], [])
            if len(w) >= 3
            and w != lw
            # jellyfish's (compiled) Damerau distance is never above ours: a fast first sieve
            and jellyfish.damerau_levenshtein_distance(lw, w) <= 3
            and damerau_distance(lw, w, 4) <= 3
            and sounds_alike(lw, w)
        )

    def expansions(self, short: str, limit: int = 40) -> list[str]:
        """Known words that could be ``short`` written in shorthand: same first letter, its letters in order."""
        ls = short.lower()
        out = []
        for w in self._by_initial.get(ls[:1], []):
            if len(w) > len(ls) and _is_subsequence(ls, w):
                out.append(w)
                if len(out) >= limit:
                    break
        return out


def _is_subsequence(short: str, word: str) -> bool:
    it = iter(word)
    return all(ch in it for ch in short)

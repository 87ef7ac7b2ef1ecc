"""A classical baseline for SMS: a spell checker (SymSpell) with SMS's own vocabulary and guards.

Every word that is not correct (neither the model's nor the clinical vocabulary's, see
:func:`monai_imc.text_candidates.is_correct`), not protected and not an acronym becomes SymSpell's closest
suggestion among the words SMS may write (the model's words and the site list), within edit distance 2
(1 for words of up to 4 letters). No model call; the guards (:func:`monai_imc.guards.check_repair`) refuse
a correction that changes a fact, in which case the text is kept. It is the benchmark's ``spellcheck``
method, beside the one-call ``repass``.

Example::

    checker = SpellCheckBaseline.like(refiner)
    checker.correct("Is there a pnuemothorax in the left lung?")
"""

from __future__ import annotations

import re
from collections.abc import Container

from monai_imc.guards import check_repair
from monai_imc.lexicon import is_protected_word
from monai_imc.model_vocabulary import Vocabulary
from monai_imc.refine import SMSRefiner
from monai_imc.text_candidates import is_correct

__all__ = ["SpellCheckBaseline"]

_WORD = re.compile(r"[A-Za-z]+")


class SpellCheckBaseline:
    """SymSpell over the words SMS may write; correct words, facts and acronyms are left alone.

    Args:
        vocabulary: the words a correction may write (the model's, as SMS's specialists).
        clinical: words known to be correct beyond the model's (as SMS's), or ``None``.

    Raises:
        ImportError: ``symspellpy`` is not installed (``pip install monai-imc[bench]``).
    """

    def __init__(self, vocabulary: Vocabulary, clinical: Container[str] | None = None) -> None:
        try:
            from symspellpy import SymSpell, Verbosity
        except ImportError as err:  # pragma: no cover - an install problem, said before any work
            raise ImportError(
                "the spellcheck baseline needs symspellpy: pip install 'monai-imc[bench]'"
            ) from err
        self.vocabulary = vocabulary
        self.clinical = clinical
        self._verbosity = Verbosity.CLOSEST
        self._symspell = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for word in sorted(vocabulary.words):
            self._symspell.create_dictionary_entry(word, 1)

    @classmethod
    def like(cls, refiner: SMSRefiner) -> SpellCheckBaseline:
        """A baseline with ``refiner``'s vocabularies.

        Raises:
            ValueError: the refiner has no vocabulary (a remote model without lexical specialists).
        """
        if refiner.vocabulary is None:
            raise ValueError("the spellcheck baseline needs the refiner's vocabulary (a local model)")
        return cls(refiner.vocabulary, refiner.clinical)

    def correct(self, text: str) -> str:
        """``text`` with its misspelt words replaced by their closest known word (``text`` if a guard objects)."""
        return self.check(text)[0]

    def check(self, text: str) -> tuple[str, list[str]]:
        """:meth:`correct`'s text and the guard violations that refused the correction (empty: none refused)."""
        out, last = [], 0
        for m in _WORD.finditer(text):
            word = m.group()
            if (
                is_protected_word(word)
                or is_correct(word, self.vocabulary, self.clinical)
                or (len(word) > 1 and word.isupper())
                or text[m.start() - 1 : m.start()].isdigit()
                or text[m.end() : m.end() + 1].isdigit()
            ):
                continue
            distance = 1 if len(word) <= 4 else 2
            found = self._symspell.lookup(word.lower(), self._verbosity, max_edit_distance=distance)
            if not found:
                continue
            # nearest first; among equals, the same length (a swap or a wrong letter), then a restored
            # dropped letter rather than a deleted one, a word the model knows, the commoner one
            best = min(
                found,
                key=lambda s: (
                    s.distance,
                    abs(len(s.term) - len(word)),
                    -len(s.term),
                    s.term not in self.vocabulary,
                    -s.count,
                    s.term,
                ),
            ).term
            if is_protected_word(best):
                continue
            out.append(text[last : m.start()])
            out.append(best.capitalize() if word[:1].isupper() else best)
            last = m.end()
        corrected = "".join(out) + text[last:]
        refused = check_repair(text, corrected) if corrected != text else []
        return (text if refused else corrected), refused

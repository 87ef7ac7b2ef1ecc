"""Answer normalisation and the answer metrics shared by the benchmark, the measurements and the reference
model's evaluation."""

from __future__ import annotations

__all__ = ["exact_match", "normalize_answer", "token_recall"]

_ARTICLES = frozenset({"a", "an", "the"})


def normalize_answer(text: str) -> str:
    """Normalise an answer for exact match: lower case, punctuation and articles removed, spaces collapsed.

    Args:
        text: the answer.

    Returns:
        The normalised answer.
    """
    text = "".join(c if c.isalnum() or c.isspace() else " " for c in str(text).lower())
    return " ".join(w for w in text.split() if w not in _ARTICLES)


def exact_match(prediction: str, reference: str) -> bool:
    """Whether the prediction is the reference answer, both normalised (:func:`normalize_answer`)."""
    return normalize_answer(prediction) == normalize_answer(reference)


def token_recall(prediction: str, reference: str) -> float:
    """Share of the reference answer's (normalised) words that the prediction contains.

    Args:
        prediction: the model's answer.
        reference: the reference answer.

    Returns:
        A value in [0, 1] (1 for an empty reference).
    """
    ref = normalize_answer(reference).split()
    if not ref:
        return 1.0
    pred = set(normalize_answer(prediction).split())
    return sum(1 for w in ref if w in pred) / len(ref)

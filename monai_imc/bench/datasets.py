"""The benchmark's question sampling. The readers are the one data layer's (:mod:`monai_imc.data`):
``slake:PATH``, ``vqa-rad:PATH`` and ``jsonl:FILE`` by IMC split (``validate`` = the images training held
out).
"""

from __future__ import annotations

import random

from monai_imc.data import VQARow

__all__ = ["stratified_subset"]


def stratified_subset(rows: list[VQARow], limit: int, seed: int = 0) -> list[VQARow]:
    """A seeded subset of at most ``limit`` rows with the closed/open mix of ``rows``, in the original order.

    Each stratum (closed, open) gets its share of ``limit`` (rounded, at least one where the stratum is
    not empty and ``limit`` allows); the rows of a stratum are drawn with ``random.Random(seed)``.
    """
    if limit <= 0 or limit >= len(rows):
        return list(rows)
    closed = [i for i, r in enumerate(rows) if r.closed]
    opened = [i for i, r in enumerate(rows) if not r.closed]
    n_closed = round(limit * len(closed) / len(rows))
    if closed and opened and limit >= 2:
        n_closed = min(max(n_closed, 1), limit - 1)
    n_closed = min(n_closed, len(closed))
    rng = random.Random(seed)
    chosen = rng.sample(closed, n_closed) + rng.sample(opened, min(limit - n_closed, len(opened)))
    return [rows[i] for i in sorted(chosen)]

"""The shuffled-image control (SURE-VQA): every question shown another image of its own dataset and split.

A model that answers as well with the wrong image reads the answer from the question alone; the reference
recipe's evaluation and the benchmark's ``shuffled-image`` method both draw the other image here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from monai_imc.data.rows import VQARow

__all__ = ["shuffled_image_keys", "shuffled_images"]


def shuffled_image_keys(rows: Sequence[VQARow], seed: int = 0) -> dict[str, str]:
    """Each image key of ``rows`` mapped to another image key of the same dataset in ``rows``.

    A seeded derangement of each dataset's distinct images (no image keeps its own): the keys in sorted
    order are shuffled with ``random.Random(seed)`` and each key goes to the next one in that order.

    Args:
        rows: the questions (the images of one split: the pool the other image is drawn from).
        seed: the draw.

    Raises:
        ValueError: a dataset of ``rows`` has a single image (no other image to show).
    """
    by_dataset: dict[str, set[str]] = {}
    for r in rows:
        by_dataset.setdefault(r.dataset, set()).add(r.image_key)
    mapping: dict[str, str] = {}
    for dataset, keys in by_dataset.items():
        if len(keys) < 2:
            raise ValueError(
                f"{dataset}: the shuffled-image control needs two images or more, got {len(keys)}"
            )
        order = sorted(keys)
        random.Random(seed).shuffle(order)
        # rotate the shuffled order by one: a derangement whenever there are two or more images
        mapping.update({k: order[(i + 1) % len(order)] for i, k in enumerate(order)})
    return mapping


def shuffled_images(rows: Sequence[VQARow], seed: int = 0) -> dict[str, Path]:
    """Each image key of ``rows`` mapped to the file of another image of the same dataset
    (:func:`shuffled_image_keys`)."""
    path = {r.image_key: r.image for r in rows}
    return {k: path[other] for k, other in shuffled_image_keys(rows, seed).items()}

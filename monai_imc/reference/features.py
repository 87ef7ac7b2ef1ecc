"""The frozen tower's features of the training images, computed once (and cached across runs).

With the vision tower frozen, a training step only needs the tower's output tokens of each image: they
are computed once per image through the checkpoint's own image processor (the same path as
``encode_images`` in the app and the benchmark), kept in memory, and optionally cached on disk keyed by
the tower's weights, so the model and its no-image twin and every seed share one vision pass.

Example:
    >>> feats = tower_features(model, processor, paths, cache="results/feature_cache.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["BLANK", "TokenDropout", "load_rgb", "tower_digest", "tower_features"]

#: The key of the black image (the no-image twin's only image).
BLANK = "<blank>"


def load_rgb(path: str | Path | None) -> Any:
    """The view of the image at ``path`` (:func:`monai_imc.data.load_view`, as the app and the bank see it) as a
    PIL RGB image; ``None`` gives the black 256 x 256 image of the twin."""
    from PIL import Image

    from monai_imc.data import load_view

    if path is None:
        return Image.new("RGB", (256, 256))
    return Image.fromarray(load_view(path)).convert("RGB")  # the one file -> view function of the app


def tower_digest(model: Any) -> str:
    """A short hash of the vision tower's weights and the feature layer (the cache key's model half)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.model.vision_tower.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(model.config.vision_feature_layer).encode())
    return h.hexdigest()[:16]


def _encode(model: Any, processor: Any, images: list[Any]) -> torch.Tensor:
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    tower = model.model.vision_tower
    with torch.no_grad():
        out = tower(pixels.to(next(tower.parameters()).dtype), output_hidden_states=True)
    return out.hidden_states[model.config.vision_feature_layer].float()


def tower_features(
    model: Any,
    processor: Any,
    images: Sequence[tuple[str, str | Path | None]],
    batch_size: int = 32,
    cache: str | Path | None = None,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """The projector-input tokens of each image, from one pass of the frozen tower.

    Args:
        model: a reference ``LlavaForConditionalGeneration`` (its tower in eval mode).
        processor: its ``LlavaProcessor``.
        images: ``(key, path)`` pairs; a ``None`` path is the black image.
        batch_size: images per tower call.
        cache: a ``.pt`` file holding earlier features of the same tower (read and extended).
        progress: show a tqdm bar.

    Returns:
        ``key -> (tokens, channels)`` float32 tensors.
    """
    from tqdm.auto import tqdm

    digest = tower_digest(model)
    stored: dict[str, torch.Tensor] = {}
    cache_path = Path(cache) if cache else None
    if cache_path is not None and cache_path.is_file():
        blob = torch.load(cache_path, map_location="cpu", weights_only=True)
        if blob.get("digest") == digest:
            stored = dict(blob["features"])
        else:
            logger.info("Feature cache %s was made by another tower; recomputing", cache_path)
    todo = [(k, p) for k, p in dict(images).items() if k not in stored]
    model.model.vision_tower.eval()
    for i in tqdm(range(0, len(todo), batch_size), desc="tower features", disable=not progress, mininterval=5):
        chunk = todo[i : i + batch_size]
        feats = _encode(model, processor, [load_rgb(p) for _, p in chunk])
        for (key, _), f in zip(chunk, feats):
            stored[key] = f.clone()
    if cache_path is not None and todo:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        torch.save({"digest": digest, "features": stored}, tmp)
        tmp.replace(cache_path)
    return {k: stored[k] for k, _ in images}


class TokenDropout:
    """Image-token dropout on a table of cached features (``(images, tokens, channels)``): each token of the
    batch's images is zeroed with probability ``p`` (drawn from ``generator``). The zeroed rows are written
    into one working copy and put back by :meth:`restore`, so a step never copies the whole table; with
    ``p == 0`` the table itself is used."""

    def __init__(self, feats: torch.Tensor, p: float, generator: torch.Generator) -> None:
        self.feats, self.p, self.generator = feats, p, generator
        self.work = feats.clone() if p > 0 else feats
        self.rows: list[int] = []

    def apply(self, rows: list[int]) -> torch.Tensor:
        """The table with ``rows``' tokens dropped."""
        if self.p > 0:
            keep = (torch.rand(len(rows), self.feats.shape[1], 1, generator=self.generator) >= self.p).float()
            self.work[rows] = self.feats[rows] * keep
            self.rows = rows
        return self.work

    def restore(self) -> None:
        """Put the last batch's rows back."""
        if self.rows:
            self.work[self.rows] = self.feats[self.rows]
            self.rows = []

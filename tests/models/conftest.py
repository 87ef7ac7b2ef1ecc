"""Fixtures for the model adapter tests: tiny checkpoints of every family, built once per session.

Each checkpoint is a real HF transformers model of its family (a few layers, hidden size 32) with a
tokenizer trained locally and the family's own image processor, written with ``save_pretrained`` and
loaded back through :func:`monai_imc.models.load_model`, the path a real checkpoint takes. Nothing is
downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_imc.models import HFVisionLanguageModel, load_model
from monai_imc.models.tiny import TINY_FAMILIES, build_tiny_checkpoint

FAMILIES = list(TINY_FAMILIES)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory holding one tiny checkpoint per family."""
    root = tmp_path_factory.mktemp("tiny_checkpoints")
    for family in FAMILIES:
        build_tiny_checkpoint(family, root / family, seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_models(tiny_root: Path) -> dict[str, HFVisionLanguageModel]:
    """family -> adapter loaded on the CPU in float32 through ``load_model``."""
    torch.manual_seed(0)
    return {family: load_model(str(tiny_root / family), device="cpu") for family in FAMILIES}


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    """Each supported family in turn."""
    return str(request.param)


@pytest.fixture
def tiny_model(tiny_models: dict[str, HFVisionLanguageModel], family: str) -> HFVisionLanguageModel:
    """The tiny adapter of the current family."""
    return tiny_models[family]


def make_images(seed: int = 0) -> list[Image.Image]:
    """Two seeded RGB images of different sizes and aspect ratios (Qwen2.5-VL gets several windows)."""
    rng = np.random.default_rng(seed)
    shapes = [(48, 64, 3), (64, 32, 3)]
    return [Image.fromarray(rng.integers(0, 256, size=s, dtype=np.uint8)) for s in shapes]


@pytest.fixture
def images() -> list[Image.Image]:
    """Two seeded images of different sizes."""
    return make_images(0)


class VisionCounter:
    """Counts the images the vision tower encodes (a forward hook on the tower)."""

    def __init__(self) -> None:
        self.calls = 0
        self.images = 0

    def hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        """Forward hook: one call, and as many images as the batch holds."""
        self.calls += 1
        grid = kwargs.get("grid_thw")
        if grid is None and len(args) > 1:
            grid = args[1]
        if grid is not None:  # Qwen-VL: patches of all images concatenated, one grid row per image
            self.images += int(grid.shape[0])
        else:
            pixels = args[0] if args else kwargs["pixel_values"]
            self.images += int(pixels.shape[0])


@contextlib.contextmanager
def count_vision(model: HFVisionLanguageModel) -> Iterator[VisionCounter]:
    """Count vision-tower forwards (and images) while the block runs."""
    counter = VisionCounter()
    handle = model.vision_tower.register_forward_hook(counter.hook, with_kwargs=True)
    try:
        yield counter
    finally:
        handle.remove()


@pytest.fixture(name="count_vision")
def count_vision_fixture():
    """The :func:`count_vision` context manager, for tests (they do not import conftest)."""
    return count_vision


@pytest.fixture(name="make_images")
def make_images_fixture():
    """The :func:`make_images` factory, for tests."""
    return make_images

"""Shared fixtures: real DICOM from pydicom's test data, real images and questions from ../shared/data.

Tests that need the datasets find them through ``MONAI_IMC_DATA`` (default: ``../shared/data`` beside the
checkout). Where the folder is absent they skip with the reason, except under CI (``CI=true``), where
they fail: CI must run them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import REPO, require_data

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets folder (SLAKE, VQA-RAD)."""
    return require_data()


@pytest.fixture(scope="session")
def real_questions(data_dir: Path) -> list[str]:
    """A fixed sample of real SLAKE and VQA-RAD questions (English)."""
    questions = []
    for rel in ("slake/qa_en.jsonl", "vqa_rad/qa.jsonl"):
        with open(data_dir / rel, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        questions.extend(r["question"] for r in rows[::25])
    return questions


@pytest.fixture(scope="session")
def bundled():
    """The bundle's model, bank, pipeline and refiner (``IMCContext``), loaded once for the whole session:
    the app, benchmark and refiner tests share it instead of loading the model again."""
    from monai_imc.deploy.context import load_context

    return load_context(REPO / "bundles" / "monai_imc_vqa", device="cpu")

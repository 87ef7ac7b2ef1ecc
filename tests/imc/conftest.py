"""Fixtures for perceive / calibrate: a tiny LLaVA built locally, a bank built from real DICOM images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import dicom_path

from monai_imc.imageio import model_view, read_image
from monai_imc.models import HFVisionLanguageModel, load_model
from monai_imc.models.tiny import build_tiny_checkpoint
from monai_imc.noise.preview import shrink
from monai_imc.prototypes import PrototypeBank, build_bank

BANK_NOISES = ["rician", "blur", "motion"]
BANK_SEVERITIES = [1, 3, 5]


def real_views() -> list[np.ndarray]:
    """Sixteen real 8-bit views: the frames of a multi-frame MR, CT and MR slices (64 px)."""
    views = []
    volume = read_image(dicom_path("emri_small.dcm"))
    for z in range(volume.array.shape[-1]):
        frame = volume.array[..., z]
        views.append(model_view(type(volume)(frame, volume.source, volume.modality, volume.window)))
    for name in ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm", "MR2_UNCI.dcm", "RG3_UNCI.dcm", "eCT_Supplemental.dcm"):
        image = read_image(dicom_path(name))
        small = shrink(image.array, 64)
        views.append(model_view(type(image)(small, image.source, image.modality, image.window, image.invert)))
    return views


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> HFVisionLanguageModel:
    path = build_tiny_checkpoint("llava", tmp_path_factory.mktemp("tiny") / "llava", seed=0)
    return load_model(str(path), device="cpu")


@pytest.fixture(scope="session")
def views() -> list[np.ndarray]:
    return real_views()


@pytest.fixture(scope="session")
def bank(tiny_llava: HFVisionLanguageModel, views: list[np.ndarray]) -> PrototypeBank:
    return build_bank(tiny_llava, views, BANK_NOISES, BANK_SEVERITIES, seed=0, validation_fraction=0.25)


@pytest.fixture(scope="session")
def saved_bank(bank: PrototypeBank, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bank.save(tmp_path_factory.mktemp("bank"))

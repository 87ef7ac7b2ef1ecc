"""Fixtures of the app tests: the bundled reference model loaded once, the sample study, one graph run.

The app graph is the real one (Holoscan, the SDK's DICOM loader and series selector, our operators) on
real DICOM from pydicom's test data, with the bundled reference model and its prototype bank.
"""

from __future__ import annotations

import os

import pytest
from app_helpers import AppRun, run_app
from helpers import REPO

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.sample import SampleStudy, write_sample_study

BUNDLE = REPO / "bundles" / "monai_imc_vqa"

os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "WARN")


@pytest.fixture(scope="session")
def imc(bundled: IMCContext) -> IMCContext:
    """The bundle's model, bank, pipeline and refiner, built once for every test (the shared ``bundled``)."""
    return bundled


@pytest.fixture(scope="session")
def sample_study(tmp_path_factory: pytest.TempPathFactory) -> SampleStudy:
    """The sample study of pydicom's bundled DICOM files with noisy variants."""
    return write_sample_study(tmp_path_factory.mktemp("sample_study"))


@pytest.fixture(scope="session")
def sample_run(
    imc: IMCContext, sample_study: SampleStudy, tmp_path_factory: pytest.TempPathFactory
) -> AppRun:
    """One run of the app graph on the whole sample study."""
    return run_app(imc, sample_study.folder, tmp_path_factory.mktemp("sample_out"))

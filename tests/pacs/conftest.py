"""Fixtures of the PACS tests: a real Orthanc (the PACS) on loopback, the bundle's model loaded once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO
from orthanc_helpers import Orthanc
from pacs_helpers import PASSWORD, USER

from monai_imc.deploy.context import IMCContext, load_context

os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "WARN")


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    """An Orthanc with DICOMweb, without authentication."""
    server = Orthanc(tmp_path / "orthanc")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secured_orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    """An Orthanc whose DICOMweb needs HTTP basic authentication (user ``imc``)."""
    server = Orthanc(tmp_path / "orthanc", users={USER: PASSWORD})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def imc() -> IMCContext:
    """The bundle's model, bank, pipeline and refiner, loaded once."""
    return load_context(REPO / "bundles" / "monai_imc_vqa", device="cpu")

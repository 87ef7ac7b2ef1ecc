"""Helpers shared by the tests: where the real data lives, and bundled real DICOM."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MONAI_IMC_DATA", REPO.parent / "shared" / "data"))


def require_data() -> Path:
    """The datasets folder; skips (or fails under CI) when it is absent."""
    if not (DATA / "slake").is_dir() or not (DATA / "vqa_rad").is_dir():
        reason = f"real datasets not found at {DATA} (set MONAI_IMC_DATA to the folder holding slake/ and vqa_rad/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return DATA


def dicom_path(name: str) -> Path:
    """A file of pydicom's (or pydicom-data's) bundled DICOM test data."""
    path = get_testdata_file(name)
    assert path is not None, f"{name} missing from pydicom test data (install pydicom-data)"
    return Path(path)


def dicom_pixels(name: str) -> np.ndarray:
    """The stored pixels of a bundled DICOM file, as a channel-first array of its own dtype."""
    ds = pydicom.dcmread(dicom_path(name))
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return np.moveaxis(arr, 0, -1)[None]  # (1, H, W, frames)
    return arr[None]


def require_tool(name: str, package: str) -> str:
    """The path of a command-line tool; skips (or fails under CI) when it is not installed.

    Args:
        name: the executable (``"dciodvfy"``).
        package: the Debian package that provides it (``"dicom3tools"``), named in the reason.
    """
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found on PATH (install the Debian package {package})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return path


#: Questions for SMS tests on the shipped bundle: clean, typos, an unknown word, negation with laterality,
#: numbers with a unit.
SMS_TEXTS = [
    "Is the liver normal?",
    "Is there a pnuemothorax in the lft lung?",
    "Does the picture contain any abnormaility?",
    "Is there no lesion in the right kidney?",
    "Are there 2 nodules larger than 5 mm?",
]

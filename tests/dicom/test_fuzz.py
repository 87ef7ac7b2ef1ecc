"""Property-based tests: generated DICOM files (random tags, VRs, lengths, pixel modules, pixel data,
transfer syntaxes, truncations and flipped bytes, from pydicom-data files) through the reader, the views
and the SR writer. No crash, no hang, every failure a reason, every SR written valid.

The default run is small (``MONAI_IMC_FUZZ_EXAMPLES``, default 30); a long run by hand::

    MONAI_IMC_FUZZ_EXAMPLES=1000 python -m pytest -q -s tests/dicom/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import signal
import subprocess
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers import dicom_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import uid

from monai_imc.dicom import vr
from monai_imc.dicom.read import read_dicom_file
from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment, TextRecord
from monai_imc.dicom.sr_file import write_imc_sr
from monai_imc.dicom.views import UnsupportedSeriesError, series_views

EXAMPLES = int(os.environ.get("MONAI_IMC_FUZZ_EXAMPLES", "30"))
HANG_SECONDS = 30
BASES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "emri_small.dcm",
    "US1_UNCR.dcm",
    "SC_rgb.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_bigendian.dcm",
    "OBXXXX1A.dcm",
    "rtplan.dcm",
)
SYNTAXES = (
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.RLELossless,
    uid.JPEGBaseline8Bit,
    uid.JPEG2000Lossless,
    uid.JPEGLSLossless,
    "1.2.826.0.1.3680043.8.498.1.999",
)
KEYWORDS = (
    "StudyDescription", "SeriesDescription", "PatientName", "PatientID", "PatientSex", "PatientBirthDate",
    "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName", "InstitutionName",
    "ReasonForTheRequestedProcedure", "RequestedProcedureDescription", "BodyPartExamined", "Modality",
    "WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept", "VOILUTFunction", "InstanceNumber",
    "ImagePositionPatient", "ImageOrientationPatient", "SOPClassUID", "Manufacturer", "SpecificCharacterSet",
)  # fmt: skip
VRS = ("LO", "SH", "ST", "LT", "PN", "CS", "DA", "TM", "DS", "IS", "UI", "UT", "OB", "US", "FL")
PIXEL_MODULE = (
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel", "PixelRepresentation",
    "PhotometricInterpretation", "NumberOfFrames", "PlanarConfiguration", "PixelData", "SOPClassUID",
    "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
)  # fmt: skip
COUNTS: Counter[str] = Counter()
ALGORITHM = AlgorithmInfo("fuzz", "sha256:0")

text = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=120)
tag_value = st.one_of(text, st.binary(max_size=64), st.integers(-(2**40), 2**40), st.floats(allow_nan=True))
op_set = st.tuples(st.just("set"), st.sampled_from(KEYWORDS), st.sampled_from(VRS), tag_value)
op_private = st.tuples(
    st.just("private"),
    st.integers(0x0009, 0x7FFF).map(lambda g: g | 1),
    st.sampled_from(VRS),
    tag_value,
)
op_delete = st.tuples(st.just("delete"), st.sampled_from(PIXEL_MODULE), st.none(), st.none())
op_pixel = st.tuples(
    st.just("pixel"),
    st.sampled_from(PIXEL_MODULE[:10]),
    st.none(),
    st.one_of(
        st.integers(-2, 70000),
        st.sampled_from(
            ["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR", "", "0", "abc", "-1"]
        ),
    ),
)
op_data = st.tuples(
    st.just("data"),
    st.sampled_from(["bytes", "u8", "u16", "f32", "nan"]),
    st.tuples(st.integers(0, 300), st.integers(0, 300)),
    st.binary(max_size=4096),
)
op_syntax = st.tuples(st.just("syntax"), st.sampled_from(SYNTAXES), st.none(), st.none())
operations = st.lists(st.one_of(op_set, op_private, op_delete, op_pixel, op_data, op_syntax), max_size=8)
damage = st.one_of(
    st.just(("none", 0, b"")),
    st.just(("none", 0, b"")),
    st.just(("none", 0, b"")),
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0), st.just(b"")),
    st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=16)),
)


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail the example when it spends more than ``seconds`` of CPU time (a hang; CPU time, so that a
    loaded machine does not pass for one)."""

    def alarm(signum: int, frame: object) -> None:
        raise HangError(f"no answer within {seconds} s of CPU time: a hang")

    previous = signal.signal(signal.SIGPROF, alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


class HangError(BaseException):
    """Raised by :func:`hang_guard`; a BaseException, so that no ``except Exception`` takes it for a
    reason."""


def _apply(ds: pydicom.Dataset, op: tuple) -> None:
    kind, a, b, c = op
    if kind == "set":
        ds.add_new(pydicom.datadict.tag_for_keyword(a), b, c)
    elif kind == "private":
        ds.add_new(pydicom.tag.Tag(a, 0x1010), b, c)
    elif kind == "delete":
        if a in ds:
            delattr(ds, a)
    elif kind == "pixel":
        setattr(ds, a, c)
    elif kind == "data":
        rows, columns = b
        if a == "bytes":
            ds.PixelData = c
            return
        dtype = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32, "nan": np.float32}[a]
        arr = np.frombuffer(
            (c * (1 + rows * columns * 4 // max(len(c), 1)))[: rows * columns * np.dtype(dtype).itemsize]
            or b"\0" * np.dtype(dtype).itemsize * rows * columns,
            dtype=dtype,
        )
        if a == "nan" and arr.size:
            arr = arr.copy()
            arr[:: max(1, arr.size // 7)] = np.nan
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        if dtype == np.float32:
            if "PixelData" in ds:
                del ds.PixelData
            ds.BitsAllocated = 32
            ds.FloatPixelData = arr.tobytes()
        else:
            ds.BitsAllocated = ds.BitsStored = 8 * np.dtype(dtype).itemsize
            ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
            ds.PixelData = arr.tobytes()
    elif kind == "syntax":
        ds.file_meta.TransferSyntaxUID = a


def _write(ds: pydicom.Dataset) -> bytes:
    """The dataset as file bytes (explicit little endian when its transfer syntax cannot encode it)."""
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except Exception:  # noqa: BLE001
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


@given(
    base=st.sampled_from(BASES),
    ops=operations,
    harm=damage,
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_generated_files_give_views_or_a_reason(
    tmp_path_factory: pytest.TempPathFactory, base: str, ops: list, harm: tuple
) -> None:
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    source = dicom_path(base).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(source), force=True)
        if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = uid.ImplicitVRLittleEndian
        for op in ops:
            candidate = copy.deepcopy(ds)
            try:
                _apply(candidate, op)
                _write(candidate)
            except Exception:  # noqa: BLE001  (pydicom refuses to set or write it: the generator's limit)
                COUNTS["operations pydicom cannot write, dropped"] += 1
                continue
            ds = candidate
        data = _write(ds)
    COUNTS["examples"] += 1
    try:
        _check(folder, data, harm)
    finally:
        _dump_counts()


def _check(folder: Path, data: bytes, harm: tuple) -> None:
    """Damage ``data`` as ``harm`` says, then read it, make its views and write its SR."""
    mode, where, flip = harm
    if mode == "truncate":
        data = data[: int(len(data) * where)]
    elif mode == "flip" and data:
        at = int((len(data) - 1) * where)
        data = data[:at] + flip + data[at + len(flip) :]
    path = folder / "fuzz.dcm"
    path.write_bytes(data)
    with hang_guard(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = read_dicom_file(path)
        assert check.status in ("ok", "skipped", "error")
        if check.status != "ok":
            assert check.reason, "a refused file must say why"
            COUNTS[f"file {check.status}"] += 1
            return
        assert check.dataset is not None
        try:
            views = series_views([check.dataset])
        except UnsupportedSeriesError as exc:
            assert exc.reason
            COUNTS["series refused with a reason"] += 1
            return
        for view in views:
            assert view.pixels.dtype == np.uint8 and view.pixels.size
        COUNTS["views"] += 1
        try:
            sr_path = write_imc_sr(
                folder / "sr.dcm",
                [ImageAssessment(check.dataset, None, None, 0.5)],
                [TextRecord("StudyDescription", str(check.dataset.get("StudyDescription", "") or "none"))],
                ALGORITHM,
            )
        except Exception as exc:  # noqa: BLE001  (the app fails the series with this reason)
            assert str(exc), "an SR refused must say why"
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith("SOP Instance UID") else str(exc)
            COUNTS[f"SR refused: {type(exc).__name__}: {reason[:60]}"] += 1
            assert not [p for p in folder.iterdir() if p.name != "fuzz.dcm"], "a partial file was left"
            return
    assert not vr.problems(pydicom.dcmread(sr_path))
    _dciodvfy(sr_path)
    COUNTS["SR written, valid"] += 1


def _dciodvfy(path: Path) -> None:
    tool = shutil.which("dciodvfy")
    if tool is None:
        return
    run = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True, timeout=60)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert not errors, errors


def _dump_counts() -> None:
    """With ``MONAI_IMC_FUZZ_COUNTS=FILE``, the counts so far are written there after each example (a long
    run by hand can be read while it goes)."""
    target = os.environ.get("MONAI_IMC_FUZZ_COUNTS")
    if target:
        Path(target).write_text(json.dumps(dict(sorted(COUNTS.items()))) + "\n")


def teardown_module() -> None:
    print(f"\nfuzz ({EXAMPLES} examples): {dict(sorted(COUNTS.items()))}")

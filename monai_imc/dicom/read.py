"""Read a folder of DICOM files, grouped by study and series, without stopping at a bad file.

Usage::

    from monai_imc.dicom.read import read_dicom_folder

    folder = read_dicom_folder("input/")
    for study_uid, series in folder.studies.items():
        for series_uid, datasets in series.items():
            ...
    for path, reason in folder.errors:
        ...                                  # corrupt or incomplete DICOM files, with the reason

Files that are not DICOM (no ``DICM`` preamble) are skipped and listed in ``skipped``; files that claim to
be DICOM but cannot be read, or lack the UIDs needed to group them, are reported in ``errors``. Logs name
files and UIDs, never patient names or IDs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

__all__ = ["DicomFileCheck", "DicomFolder", "check_complete", "read_dicom_file", "read_dicom_folder"]

logger = logging.getLogger(__name__)

_GROUP_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass(frozen=True)
class DicomFolder:
    """What :func:`read_dicom_folder` found.

    Attributes:
        studies: ``{StudyInstanceUID: {SeriesInstanceUID: [Dataset, ...]}}``; datasets in path order.
        errors: ``(path, reason)`` of each DICOM file that could not be read or grouped.
        skipped: paths of files that are not DICOM (and DICOMDIR files).
    """

    studies: dict[str, dict[str, list[Dataset]]] = field(default_factory=dict)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def series(self) -> list[tuple[str, str, list[Dataset]]]:
        """All series as ``(study_uid, series_uid, datasets)``, sorted by UID."""
        return [
            (study, series, self.studies[study][series])
            for study in sorted(self.studies)
            for series in sorted(self.studies[study])
        ]


def read_dicom_folder(folder: str | os.PathLike[str], recursive: bool = True) -> DicomFolder:
    """Read every DICOM file under ``folder``, grouped by StudyInstanceUID and SeriesInstanceUID.

    Args:
        folder: the folder to read.
        recursive: also read sub-folders.

    Returns:
        A :class:`DicomFolder` with the grouped datasets, the per-file errors and the skipped files.

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    result = DicomFolder()
    paths = sorted(p for p in (root.rglob("*") if recursive else root.iterdir()) if p.is_file())
    for path in paths:
        check = read_dicom_file(path)
        if check.status == "skipped":
            logger.debug("skipping %s: %s", path, check.reason)
            result.skipped.append(path)
            continue
        if check.status == "error":
            logger.warning("%s: %s", path, check.reason)
            result.errors.append((path, check.reason))
            continue
        ds = check.dataset
        assert ds is not None
        study = result.studies.setdefault(str(ds.StudyInstanceUID), {})
        study.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    logger.info(
        "read %s: %d studies, %d series, %d errors, %d skipped",
        root,
        len(result.studies),
        sum(len(s) for s in result.studies.values()),
        len(result.errors),
        len(result.skipped),
    )
    return result


@dataclass(frozen=True)
class DicomFileCheck:
    """What :func:`read_dicom_file` made of one file.

    Attributes:
        path: the file.
        status: ``"ok"``, ``"skipped"`` (not DICOM, or a DICOMDIR) or ``"error"`` (claims to be DICOM
            but is truncated, malformed or lacks the UIDs that place it in a study and series).
        reason: why it was skipped or refused (``""`` when ok).
        dataset: the dataset when ok.
    """

    path: Path
    status: str
    reason: str = ""
    dataset: Dataset | None = field(default=None, repr=False)


def read_dicom_file(path: str | os.PathLike[str]) -> DicomFileCheck:
    """Read one file and say whether it is a complete DICOM instance that can join a series.

    Never raises for bad content: the reason is in the result (the file is named by the caller's logs).
    """
    file = Path(path)
    try:
        ds = pydicom.dcmread(file)
        check_complete(ds, file)
    except InvalidDicomError:
        return DicomFileCheck(file, "skipped", "not a DICOM file (no DICM preamble)")
    except Exception as exc:  # noqa: BLE001  (malformed files raise many types; report, go on)
        return DicomFileCheck(file, "error", f"cannot read DICOM file: {type(exc).__name__}: {exc}")
    if str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "")) == "1.2.840.10008.1.3.10":
        return DicomFileCheck(file, "skipped", "DICOMDIR")
    missing = [kw for kw in _GROUP_KEYWORDS if not ds.get(kw)]
    if missing:
        return DicomFileCheck(file, "error", f"missing {', '.join(missing)}")
    return DicomFileCheck(file, "ok", "", ds)


def check_complete(ds: Dataset, path: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` when the file ends inside or before the end of its last element (pydicom
    reads such truncated files without complaint, keeping a short or missing last value).

    Args:
        ds: the dataset read from ``path`` (element offsets are those of that read).
        path: the file.
    """
    path = Path(path)
    if not len(ds):
        raise ValueError("no data elements after the file meta information")
    syntax = getattr(ds.file_meta, "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_deflated:
        return  # offsets refer to the inflated stream
    raw = ds.get_item(max(ds.keys()))
    tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:
        return
    end, size = int(tell) + int(length), path.stat().st_size
    if end != size:
        raise ValueError(
            f"file truncated or malformed: its last element ends at byte {end}, the file has {size}"
        )

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
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

__all__ = [
    "DicomFileCheck",
    "DicomFolder",
    "check_complete",
    "dedupe_instances",
    "read_dicom_file",
    "read_dicom_files",
    "read_dicom_folder",
]

logger = logging.getLogger(__name__)

_GROUP_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass(frozen=True)
class DicomFolder:
    """What :func:`read_dicom_folder` found.

    Attributes:
        studies: ``{StudyInstanceUID: {SeriesInstanceUID: [Dataset, ...]}}``; datasets in path order, one
            per SOP Instance UID (see :func:`dedupe_instances`).
        errors: ``(path, reason)`` of each DICOM file that could not be read or grouped.
        skipped_files: ``(path, reason)`` of each file left out that is no failure: not DICOM, a DICOMDIR,
            a second copy of an instance.
    """

    studies: dict[str, dict[str, list[Dataset]]] = field(default_factory=dict)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    skipped_files: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def skipped(self) -> list[Path]:
        """The paths of :attr:`skipped_files`."""
        return [path for path, _ in self.skipped_files]

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
    paths = sorted(p for p in (root.rglob("*") if recursive else root.iterdir()) if p.is_file())
    result = read_dicom_files(paths)
    logger.info(
        "read %s: %d studies, %d series, %d errors, %d skipped",
        root,
        len(result.studies),
        sum(len(s) for s in result.studies.values()),
        len(result.errors),
        len(result.skipped_files),
    )
    return result


def read_dicom_files(
    paths: Iterable[str | os.PathLike[str]], ignore_names: Iterable[str] = (), log: bool = True
) -> DicomFolder:
    """Read the given files (in sorted order), grouped by study and series, one copy per instance.

    Every file gets exactly one outcome: a dataset in a series, an error or a skip, each logged once (a
    warning naming the file and the reason, never a patient name or ID) when ``log`` is set.

    Args:
        paths: the files.
        ignore_names: file names that are no DICOM and need no reason (the app's JSON sidecar).
        log: log each error and skip.

    Returns:
        A :class:`DicomFolder`.
    """
    ignored = set(ignore_names)
    result = DicomFolder()
    by_series: dict[tuple[str, str], list[DicomFileCheck]] = {}
    incomplete: list[DicomFileCheck] = []
    for path in sorted(Path(p) for p in paths):
        if path.name in ignored:
            continue
        check = read_dicom_file(path)
        if check.status == "skipped":
            result.skipped_files.append((path, check.reason))
        elif check.status == "error":
            if check.dataset is not None and check.dataset.get("SOPInstanceUID"):
                incomplete.append(check)  # truncated: a complete copy elsewhere may stand in for it
            else:
                result.errors.append((path, check.reason))
        else:
            ds = check.dataset
            assert ds is not None
            key = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
            by_series.setdefault(key, []).append(check)
    complete: dict[str, Path] = {}
    for (study, series), checks in by_series.items():
        kept, dropped = dedupe_instances([c.dataset for c in checks if c.dataset is not None])
        result.studies.setdefault(study, {})[series] = kept
        result.skipped_files.extend((Path(p), r) for p, r in dropped)
        complete.update((str(ds.SOPInstanceUID), Path(_file_name(ds))) for ds in kept)
    for check in incomplete:
        assert check.dataset is not None
        uid = str(check.dataset.SOPInstanceUID)
        if uid in complete:
            reason = f"{check.reason}; a complete copy of its instance ({complete[uid]}) is used instead"
            result.skipped_files.append((check.path, reason))
        else:
            result.errors.append((check.path, check.reason))
    result.errors.sort()
    result.skipped_files.sort()
    if log:
        for path, reason in result.errors:
            logger.warning("%s: %s", path, reason)
        for path, reason in result.skipped_files:
            logger.warning("%s: skipped: %s", path, reason)
    return result


def dedupe_instances(datasets: Sequence[Dataset]) -> tuple[list[Dataset], list[tuple[str, str]]]:
    """One dataset per SOP Instance UID, whatever the order of ``datasets``.

    Among copies of one instance the kept one is a complete file (see :func:`check_complete`), then the
    largest file, then the first path in sort order; the others are returned with a reason.

    Returns:
        ``(kept, dropped)``: the kept datasets in their original order, and ``(path, reason)`` of the others.
    """
    copies: dict[str, list[Dataset]] = {}
    for ds in datasets:
        copies.setdefault(str(ds.get("SOPInstanceUID", "")), []).append(ds)
    best: dict[str, Dataset] = {}
    dropped: list[tuple[str, str]] = []
    for uid, group in copies.items():
        if len(group) == 1 or not uid:
            continue
        ranked = sorted(group, key=_copy_rank)
        best[uid] = ranked[0]
        for other in ranked[1:]:
            dropped.append(
                (
                    _file_name(other),
                    f"a second copy of SOP Instance UID {uid}; the copy in {_file_name(ranked[0])} is used",
                )
            )
    kept = [ds for ds in datasets if best.get(str(ds.get("SOPInstanceUID", "")), ds) is ds]
    return kept, dropped


def _file_name(ds: Dataset) -> str:
    name = getattr(ds, "filename", None)
    return str(name) if isinstance(name, (str, os.PathLike)) else "(in memory)"


def _copy_rank(ds: Dataset) -> tuple[int, int, str]:
    """Sort key of a copy: complete files first, then larger files, then the path."""
    name = getattr(ds, "filename", None)
    if not isinstance(name, (str, os.PathLike)) or not Path(name).is_file():
        return (0, 0, "")
    try:
        check_complete(ds, name)
        complete = 0
    except (ValueError, OSError):
        complete = 1
    return (complete, -Path(name).stat().st_size, str(name))


@dataclass(frozen=True)
class DicomFileCheck:
    """What :func:`read_dicom_file` made of one file.

    Attributes:
        path: the file.
        status: ``"ok"``, ``"skipped"`` (not DICOM, or a DICOMDIR) or ``"error"`` (empty, or claims to be
            DICOM but is truncated, malformed or lacks the UIDs that place it in a study and series).
        reason: why it was skipped or refused (``""`` when ok).
        dataset: the dataset when ok; also for a truncated file whose header could be read.
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
        size = file.stat().st_size
    except OSError as exc:
        return DicomFileCheck(file, "error", f"cannot read the file: {exc.strerror or exc}")
    if size == 0:
        return DicomFileCheck(file, "error", "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about what it tolerates; we report what matters
            ds = pydicom.dcmread(file)
    except InvalidDicomError:
        return DicomFileCheck(file, "skipped", "not a DICOM file (no DICM preamble)")
    except Exception as exc:  # noqa: BLE001  (malformed files raise many types; report, go on)
        return DicomFileCheck(file, "error", f"cannot read DICOM file: {_describe(exc)}")
    try:
        check_complete(ds, file)
    except Exception as exc:  # noqa: BLE001
        has_uids = all(_text(ds, kw) for kw in _GROUP_KEYWORDS)
        return DicomFileCheck(file, "error", str(exc), ds if has_uids else None)
    if _text(ds.file_meta, "MediaStorageSOPClassUID") == "1.2.840.10008.1.3.10":
        return DicomFileCheck(file, "skipped", "DICOMDIR")
    missing = [kw for kw in _GROUP_KEYWORDS if not _text(ds, kw)]
    if missing:
        return DicomFileCheck(file, "error", f"missing {', '.join(missing)}")
    return DicomFileCheck(file, "ok", "", ds)


def _text(ds: Dataset, keyword: str) -> str:
    """The value of ``keyword`` as stripped text; ``""`` when absent or unreadable."""
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001  (a malformed value raises on access)
        return ""
    if value is None or isinstance(value, (bytes, list, tuple)):
        return ""
    return str(value).strip()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}"


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
    if syntax is not None and not syntax.is_transfer_syntax:
        raise ValueError(f"unknown transfer syntax {syntax} in the file meta information")
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

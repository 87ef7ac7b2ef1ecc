"""The received instances on disk: one folder per study (named by a hash of its UID), one file per instance.

Each file is written whole before it appears (a temporary file in ``.partial/``, flushed, then renamed), so
the app never reads half a file, and an instance received twice replaces itself.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from monai_imc.pacs.queue import study_key

__all__ = ["IncomingStore"]

_UID = re.compile(r"^[0-9][0-9.]{0,63}$")


class IncomingStore:
    """The folder of received studies.

    Args:
        root: the folder (``OUT/incoming``).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._partial = self.root / ".partial"
        self._partial.mkdir(parents=True, exist_ok=True)

    def clean_partial(self) -> int:
        """Remove files left half-written by a killed service; returns how many."""
        leftovers = list(self._partial.iterdir())
        for path in leftovers:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return len(leftovers)

    def folder(self, key: str) -> Path:
        """The folder of the study with ``key``."""
        return self.root / key

    def _target(self, study_uid: str, sop_instance_uid: str) -> Path:
        name = sop_instance_uid if _UID.match(sop_instance_uid) else study_key(sop_instance_uid)
        return self.folder(study_key(study_uid)) / f"{name}.dcm"

    def _commit(self, tmp: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_bytes(self, study_uid: str, sop_instance_uid: str, data: bytes) -> Path:
        """Store one encoded instance (a DICOM file, preamble and meta included); returns its path."""
        tmp = self._partial / uuid.uuid4().hex
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = self._target(study_uid, sop_instance_uid)
        self._commit(tmp, target)
        return target

    def write_dataset(self, dataset: Dataset) -> Path:
        """Store one dataset (with its file meta information) as a DICOM file; returns its path."""
        tmp = self._partial / uuid.uuid4().hex
        pydicom.dcmwrite(tmp, dataset, enforce_file_format=True)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        target = self._target(str(dataset.StudyInstanceUID), str(dataset.SOPInstanceUID))
        self._commit(tmp, target)
        return target

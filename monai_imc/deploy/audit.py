"""Account for every input file: those the DICOM loader did not use get a reason.

The MONAI Deploy SDK's ``DICOMDataLoaderOperator`` drops files it cannot group (no UIDs, not DICOM,
a duplicate slice position) with a log line that does not name the file. :func:`audit_input` reads only
the files it left out, once more, and says for each why: an error (a DICOM file that is truncated or
lacks its UIDs: a failure of the run) or a skip (not DICOM, a DICOMDIR, a duplicate; logged, not a
failure). Logs name files, never patients.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from monai_imc.dicom.read import read_dicom_file

__all__ = ["FileFinding", "audit_input"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileFinding:
    """Why one input file is not in any series.

    Attributes:
        path: the file.
        status: ``"failed"`` (broken DICOM) or ``"skipped"``.
        reason: the reason, in words.
    """

    path: Path
    status: str
    reason: str


def audit_input(
    folder: str | os.PathLike[str], loaded: Iterable[str | os.PathLike[str]], ignore_names: Iterable[str] = ()
) -> list[FileFinding]:
    """The files under ``folder`` that are not among ``loaded``, each with why.

    Args:
        folder: the input folder (read recursively).
        loaded: paths of the files the loader put into series.
        ignore_names: file names that belong to the input and need no reason (the JSON sidecar).

    Returns:
        One finding per left-out file, in path order.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    used = {Path(p).resolve() for p in loaded}
    ignored = set(ignore_names)
    findings = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name in ignored or path.resolve() in used:
            continue
        check = read_dicom_file(path)
        if check.status == "error":
            finding = FileFinding(path, "failed", check.reason)
            logger.warning("%s: %s", path, check.reason)
        elif check.status == "skipped":
            finding = FileFinding(path, "skipped", check.reason)
            logger.warning("%s: skipped: %s", path, check.reason)
        else:
            finding = FileFinding(
                path,
                "skipped",
                "a readable instance the DICOM loader left out "
                "(e.g. a second instance at the same slice position)",
            )
            logger.info("%s: %s", path, finding.reason)
        findings.append(finding)
    return findings

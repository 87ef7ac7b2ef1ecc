"""The run report: which SRs were written, which series and files were skipped or failed, and why.

The operators add to one :class:`RunReport`; the SR writer saves it as ``imc_run_report.json`` in the
output folder (atomically). It names files, series UIDs and reasons, never patient names or IDs.

Exit code (:attr:`RunReport.exit_code`): 0 when at least one SR was written and nothing failed; 1 when
anything failed (a corrupt file, an image series without usable pixels, an error while processing) or
when the input held no image series at all. Objects that are not images (SR, KO, ...) and files that
are not DICOM are *skipped*: logged with the reason, listed, not failures.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from monai_imc.atomic import atomic_output

__all__ = ["REPORT_NAME", "Outcome", "RunReport"]

REPORT_NAME = "imc_run_report.json"
"""File name of the run report in the output folder."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one series or one file.

    Attributes:
        status: ``"written"`` (an SR), ``"stored"`` (an SR sent with STOW-RS), ``"skipped"`` or ``"failed"``.
        what: ``"series"``, ``"file"``, ``"input"`` or ``"stow"``.
        name: the Series Instance UID, or the file path.
        reason: why skipped or failed (``""`` when written).
        sr_path: the SR written for the series.
        modality: the series' modality, when known.
    """

    status: str
    what: str
    name: str
    reason: str = ""
    sr_path: str | None = None
    modality: str = ""


@dataclass
class RunReport:
    """Outcomes of one app run; thread-safe to add to.

    Attributes:
        input: the input folder.
        output: the output folder.
        outcomes: in the order they were added.
    """

    input: str
    output: str
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, outcome: Outcome) -> None:
        """Record one outcome."""
        if outcome.status not in ("written", "stored", "skipped", "failed"):
            raise ValueError(f"unknown outcome status {outcome.status!r}")
        with self._lock:
            self.outcomes.append(outcome)

    def of(self, status: str) -> list[Outcome]:
        """The outcomes with ``status``."""
        return [o for o in self.outcomes if o.status == status]

    @property
    def written(self) -> list[Path]:
        """The SR files written."""
        return [Path(o.sr_path) for o in self.of("written") if o.sr_path]

    @property
    def exit_code(self) -> int:
        """0 when SRs were written and nothing failed, else 1."""
        return 0 if self.written and not self.of("failed") else 1

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the report."""
        return {
            "input": self.input,
            "output": self.output,
            "exit_code": self.exit_code,
            "written": len(self.of("written")),
            "stored": len(self.of("stored")),
            "skipped": len(self.of("skipped")),
            "failed": len(self.of("failed")),
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    def save(self, folder: str | os.PathLike[str] | None = None) -> Path:
        """Write the report atomically to ``folder`` (default: the output folder); returns its path."""
        path = Path(folder or self.output) / REPORT_NAME
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

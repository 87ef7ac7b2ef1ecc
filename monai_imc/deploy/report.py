"""The run report: which SRs were written, which series and files were skipped or failed, and why.

The operators add to one :class:`RunReport`; the SR writer saves it as ``imc_run_report.json`` in the
output folder (atomically). It names files, series UIDs and reasons, never patient names or IDs.

Exit code (:attr:`RunReport.exit_code`): 0 when at least one SR was written (or kept: already there and
current) and nothing failed; 1 when anything failed (a corrupt file, an image series without usable
pixels, an error while processing) or when the input held no image series at all. Objects that are not
images (SR, KO, ...) and files that are not DICOM are *skipped*: logged with the reason, listed, not
failures.

The report is saved as the run goes (``autosave``): its ``state`` is ``"running"`` until the run ends
(``"complete"``), or ``"interrupted"`` when SIGTERM / SIGINT stopped it; a report still saying
``"running"`` is that of a killed run (``kill -9``), and the next run in that folder says so in its notes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from monai_imc.atomic import atomic_output
from monai_imc.timing import StageTimer

__all__ = ["REPORT_NAME", "STATUSES", "Outcome", "RunReport"]

logger = logging.getLogger(__name__)

REPORT_NAME = "imc_run_report.json"
"""File name of the run report in the output folder."""

STATUSES = ("written", "kept", "stored", "skipped", "removed", "failed")
"""Outcome statuses: an SR written; an SR kept (already there and current, ``--skip-existing``); an SR
stored with STOW-RS; a series or file skipped (not a failure); a leftover temporary file removed; a
failure."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one series or one file.

    Attributes:
        status: one of :data:`STATUSES`.
        what: ``"series"``, ``"file"``, ``"input"``, ``"stow"`` or ``"run"``.
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
        state: ``"running"``, ``"complete"`` or ``"interrupted"``.
        notes: what a reader should know about the run (an interrupted previous run, the signal).
        autosave: save the report in the output folder after each outcome and change of state.
        timer: the run's per-stage timings (:mod:`monai_imc.timing`), saved under ``"timings"``.
    """

    input: str
    output: str
    outcomes: list[Outcome] = field(default_factory=list)
    state: str = "running"
    notes: list[str] = field(default_factory=list)
    autosave: bool = False
    timer: StageTimer = field(default_factory=StageTimer, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def add(self, outcome: Outcome) -> None:
        """Record one outcome (and save the report when ``autosave``)."""
        if outcome.status not in STATUSES:
            raise ValueError(f"unknown outcome status {outcome.status!r}")
        with self._lock:
            self.outcomes.append(outcome)
            if self.autosave:
                self.save()

    def note(self, text: str) -> None:
        """Add a note about the run (and save when ``autosave``)."""
        with self._lock:
            self.notes.append(text)
            if self.autosave:
                self.save()

    def finish(self, state: str = "complete") -> Path:
        """Mark the run ``"complete"`` (or ``"interrupted"``) and save the report; returns its path."""
        if state not in ("complete", "interrupted"):
            raise ValueError(f"unknown final state {state!r}")
        with self._lock:
            self.state = state
            return self.save()

    def previous_state(self, folder: str | os.PathLike[str] | None = None) -> str | None:
        """The ``state`` of the report an earlier run left in ``folder`` (default: the output folder);
        ``None`` when there is none or it cannot be read."""
        try:
            data = json.loads((Path(folder or self.output) / REPORT_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return str(data.get("state", "complete")) if isinstance(data, dict) else None

    def of(self, status: str) -> list[Outcome]:
        """The outcomes with ``status``."""
        return [o for o in self.outcomes if o.status == status]

    @property
    def written(self) -> list[Path]:
        """The SR files written."""
        return [Path(o.sr_path) for o in self.of("written") if o.sr_path]

    @property
    def exit_code(self) -> int:
        """0 when SRs were written or kept and nothing failed, else 1."""
        return 0 if (self.written or self.of("kept")) and not self.of("failed") else 1

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the report."""
        return {
            "input": self.input,
            "output": self.output,
            "state": self.state,
            "exit_code": self.exit_code,
            **{status: len(self.of(status)) for status in STATUSES},
            "notes": list(self.notes),
            "outcomes": [asdict(o) for o in self.outcomes],
            "timings": self.timer.to_dict(),
        }

    def save(self, folder: str | os.PathLike[str] | None = None) -> Path:
        """Write the report atomically to ``folder`` (default: the output folder); returns its path."""
        path = Path(folder or self.output) / REPORT_NAME
        with self._lock, atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

"""``monai-imc serve``: a long-running service around the app and one loaded model.

Studies come in by C-STORE (:class:`~monai_imc.pacs.listener.StudyListener`) and/or are pulled over DICOMweb
(:class:`~monai_imc.pacs.source.DicomwebSource`); the durable queue (:mod:`monai_imc.pacs.queue`) holds
them; each study, once complete, is processed by the same app graph ``monai-imc run`` runs
(:class:`AppProcessor`: :class:`~monai_imc.operators.application.IMCApplication` with the one loaded
context), and its SRs are delivered to the destination, retried with backoff while it is down.

Output folder::

    OUT/imc_queue.sqlite          the queue
    OUT/incoming/<key>/*.dcm      received instances (key: a hash of the Study Instance UID)
    OUT/studies/<key>/            the SRs and imc_run_report.json of the study

Usage::

    settings.validate()
    service = Service(settings, AppProcessor(load_context(bundle)))
    service.run()
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from monai_imc.pacs.destinations import Destination, make_destination
from monai_imc.pacs.queue import QUEUE_FILE, WorkQueue
from monai_imc.pacs.settings import ServeSettings
from monai_imc.pacs.store import IncomingStore

if TYPE_CHECKING:
    from monai_imc.deploy.context import IMCContext

__all__ = ["AppProcessor", "ProcessResult", "Processor", "ServeSummary", "Service"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessResult:
    """What processing one study gave.

    Attributes:
        srs: the SR files written.
        failures: what failed (series or files), one line each.
    """

    srs: tuple[Path, ...]
    failures: tuple[str, ...] = ()


@runtime_checkable
class Processor(Protocol):
    """Processes one study folder into SRs."""

    def process(self, input_folder: Path, output_folder: Path) -> ProcessResult:
        """Write the study's SRs into ``output_folder``."""
        ...


class AppProcessor:
    """The app graph of ``monai-imc run`` (:class:`IMCApplication`) on one study, with a loaded context.

    Args:
        context: the model, bank, pipeline and refiner, loaded once for every study.
    """

    def __init__(self, context: IMCContext) -> None:
        self._context = context

    def process(self, input_folder: Path, output_folder: Path) -> ProcessResult:
        """Run the app graph on the study's folder."""
        from monai_imc.operators.application import IMCApplication

        app = IMCApplication(
            [sys.executable, "monai-imc"],
            imc=self._context,
            input_folder=input_folder,
            output_folder=output_folder,
        )
        app.run()
        assert app.report is not None
        failures = tuple(f"{o.what} {Path(o.name).name}: {o.reason}" for o in app.report.of("failed"))
        return ProcessResult(tuple(app.report.written), failures)


@dataclass
class ServeSummary:
    """What one run of the service did (counts)."""

    recovered: int = 0
    processed: int = 0
    processing_failures: int = 0
    delivered: int = 0
    delivery_failures: int = 0
    errors: list[str] = field(default_factory=list)


class Service:
    """The service: sources, queue, processing, delivery.

    Args:
        settings: validated settings.
        processor: processes a study (:class:`AppProcessor` with the loaded model).
        destination: where SRs go (default: from ``settings.destination``; ``None`` there: none).
    """

    def __init__(
        self, settings: ServeSettings, processor: Processor, destination: Destination | None = None
    ) -> None:
        from monai_imc.pacs.listener import StudyListener
        from monai_imc.pacs.source import DicomwebSource

        settings.validate()
        self.settings = settings
        self.output = Path(settings.output)
        self.queue = WorkQueue(self.output / QUEUE_FILE)
        self.store = IncomingStore(self.output / "incoming")
        self.processor = processor
        if destination is None and settings.destination is not None:
            destination = make_destination(settings.destination)
        self.destination = destination
        limit = settings.max_pending_studies
        self.listener = (
            StudyListener(settings.listener, self.queue, self.store, limit) if settings.listener else None
        )
        self.source = DicomwebSource(settings.pull, self.queue, self.store, limit) if settings.pull else None
        self.summary = ServeSummary()

    def _delay(self, attempts: int) -> float:
        return min(self.settings.retry_max_seconds, self.settings.retry_seconds * 2**attempts)

    def process_one(self) -> bool:
        """Process the next ready study; returns whether there was one."""
        job = self.queue.claim()
        if job is None:
            return False
        out = self.output / "studies" / job.key
        logger.info("processing study %s (generation %d)", job.study_uid, job.generation)
        try:
            result = self.processor.process(self.store.folder(job.key), out)
        except Exception as exc:  # noqa: BLE001  (one study must not stop the service: retried, then failed)
            error = f"processing study {job.study_uid} raised {type(exc).__name__}: {exc}"
            state = self.queue.processing_failed(
                job, error, self._delay(job.attempts), self.settings.max_processing_attempts
            )
            logger.error("%s (%s)", error, "given up" if state == "failed" else "will retry")
            self.summary.processing_failures += 1
            self.summary.errors.append(error)
            return True
        srs = [str(p) for p in result.srs] if self.destination is not None else []
        note = "; ".join(result.failures)
        for line in result.failures:
            logger.warning("study %s: %s", job.study_uid, line)
        if self.queue.processed(job, srs, note):
            self.summary.processed += 1
            logger.info("study %s: %d SR(s) written to %s", job.study_uid, len(result.srs), out)
        return True

    def deliver_one(self) -> bool:
        """Deliver the SRs of the next processed study whose retry time has come; returns whether there was
        one."""
        job = self.queue.claim_delivery()
        if job is None or self.destination is None:
            return False
        paths = [Path(p) for p in job.srs]
        missing = [p for p in paths if not p.is_file()]
        results = self.destination.send([p for p in paths if p.is_file()])
        failed = [r for r in results if not r.stored]
        if not failed and not missing:
            self.queue.delivered(job)
            self.summary.delivered += 1
            logger.info(
                "study %s: %d SR(s) stored on %s", job.study_uid, len(results), self.destination.public()
            )
            return True
        reason = failed[0].reason if failed else f"{len(missing)} SR file(s) missing"
        delay = self._delay(job.attempts)
        error = (
            f"delivery of study {job.study_uid} to {self.destination.public()} failed "
            f"(attempt {job.attempts + 1}; {len(failed) + len(missing)} of {len(paths)} SR(s)): {reason}; "
            f"retrying in {delay:.1f} s"
        )
        logger.warning("%s", error)
        if missing:  # the SRs are gone: process the study again rather than lose it
            self.queue.processed(job, [], error)
            self.queue.record_instance(job.study_uid, time.time() - self.settings.retry_max_seconds)
        else:
            self.queue.delivery_failed(job, error, delay)
        self.summary.delivery_failures += 1
        self.summary.errors.append(error)
        return True

    def _idle(self, since: float) -> bool:
        idle = self.settings.exit_when_idle
        if idle is None or self.queue.pending():
            return False
        last = max(
            since,
            self.listener.last_received if self.listener else 0.0,
            self.source.last_pulled if self.source else 0.0,
        )
        return time.time() - last >= idle

    def run(self, stop: threading.Event | None = None) -> ServeSummary:
        """Serve until ``stop`` is set, SIGTERM/SIGINT, or (with ``exit_when_idle``) nothing is left to do.

        Returns:
            The counts of this run.
        """
        stop = stop or threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        self.store.clean_partial()
        self.summary.recovered = self.queue.recover()
        if self.summary.recovered:
            logger.warning(
                "resumed: %d study(ies) interrupted while processing are queued again", self.summary.recovered
            )
        if self.listener is not None:
            self.listener.start()
        started = time.time()
        next_poll = 0.0
        quiet = self.settings.listener.quiet_seconds if self.settings.listener else 0.0
        try:
            while not stop.is_set():
                now = time.time()
                self.queue.promote_quiet(now, quiet)
                if self.source is not None and now >= next_poll:
                    self.source.poll()
                    next_poll = time.time() + self.source.settings.poll_seconds
                if self.deliver_one() or self.process_one():
                    continue
                if self._idle(started):
                    logger.info("nothing left to do for %.0f s: stopping", self.settings.exit_when_idle)
                    break
                stop.wait(0.2)
        finally:
            if self.listener is not None:
                self.listener.stop()
            self.queue.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.summary

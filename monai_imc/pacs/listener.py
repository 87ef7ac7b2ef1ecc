"""The C-STORE SCP of ``monai-imc serve`` (pynetdicom): receives instances, files them by study, queues them.

Only the configured calling AE titles may associate (and only to our AE title); an association may store at
most ``max_instances_per_association`` instances, and a new study is refused (status 0xA700, out of
resources) while ``max_pending_studies`` studies wait. An instance is acknowledged (status 0x0000) only
once its file is on disk and its study is recorded in the queue, so a sender that got success never loses
it, and one that got an error (or no answer: the service was killed) sends it again.

Logs name Study and SOP Instance UIDs and AE titles, never a patient name or ID.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from monai_imc.pacs.queue import WorkQueue
from monai_imc.pacs.settings import ListenerSettings
from monai_imc.pacs.store import IncomingStore

__all__ = ["StudyListener"]

logger = logging.getLogger(__name__)

_OUT_OF_RESOURCES = 0xA700
_CANNOT_UNDERSTAND = 0xC000


class StudyListener:
    """A C-STORE SCP feeding the work queue.

    Args:
        settings: AE title, address, port, allowed calling AE titles, limits.
        queue: the work queue.
        store: where instances are written.
        max_pending_studies: refuse a new study while this many studies have work left.
    """

    def __init__(
        self, settings: ListenerSettings, queue: WorkQueue, store: IncomingStore, max_pending_studies: int
    ) -> None:
        self.settings = settings
        self._queue = queue
        self._store = store
        self._max_pending = max_pending_studies
        self._server: Any = None
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()
        self.last_received = 0.0
        self.received = 0

    def start(self) -> None:
        """Bind the port and serve in background threads.

        Raises:
            OSError: the port cannot be bound.
        """
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.require_calling_aet = list(s.allowed_calling)
        ae.require_called_aet = True
        ae.maximum_pdu_size = s.max_pdu
        ae.maximum_associations = 10
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        self._server = ae.start_server((s.host, s.port), block=False, evt_handlers=handlers)
        logger.info(
            "listening as %s on %s:%d (calling AE titles %s)",
            s.ae_title,
            s.host,
            s.port,
            ",".join(s.allowed_calling),
        )

    def stop(self) -> None:
        """Stop accepting associations and close the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_end(self, event: Any) -> None:
        with self._lock:
            self._counts.pop(id(event.assoc), None)

    def _on_rejected(self, event: Any) -> None:
        logger.warning("association from %s rejected", event.assoc.requestor.ae_title)

    def _on_store(self, event: Any) -> int:
        with self._lock:
            count = self._counts[id(event.assoc)] = self._counts.get(id(event.assoc), 0) + 1
        if count > self.settings.max_instances_per_association:
            logger.warning(
                "association from %s: more than %d instances, refused",
                event.assoc.requestor.ae_title,
                self.settings.max_instances_per_association,
            )
            return _OUT_OF_RESOURCES
        try:
            dataset = event.dataset
            study_uid = str(dataset.StudyInstanceUID)
            sop_uid = str(dataset.SOPInstanceUID)
        except (AttributeError, KeyError, ValueError) as exc:
            logger.warning("C-STORE without a Study or SOP Instance UID refused: %s", exc)
            return _CANNOT_UNDERSTAND
        if not self._queue.known(study_uid) and self._queue.pending() >= self._max_pending:
            logger.warning(
                "study %s refused: %d studies are waiting (the limit)", study_uid, self._max_pending
            )
            return _OUT_OF_RESOURCES
        try:
            self._store.write_bytes(study_uid, sop_uid, event.encoded_dataset(include_meta=True))
            now = time.time()
            self._queue.record_instance(study_uid, now)
        except OSError as exc:
            logger.error("instance %s of study %s not stored: %s", sop_uid, study_uid, exc)
            return _OUT_OF_RESOURCES
        self.last_received = now
        self.received += 1
        return 0x0000

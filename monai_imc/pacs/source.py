"""The DICOMweb pull source of ``monai-imc serve``: QIDO-RS finds studies, WADO-RS retrieves each new one
(``dicomweb-client``).

A study is pulled once: when its Study Instance UID is not in the queue yet. The SRs the service stores back
into a study do not make it new again. The study's row is written only after every instance is on disk, so a
service killed while retrieving pulls the study again on restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from monai_imc.deploy.stow import _short
from monai_imc.pacs.queue import WorkQueue
from monai_imc.pacs.settings import PullSettings
from monai_imc.pacs.store import IncomingStore

__all__ = ["DicomwebSource"]

logger = logging.getLogger(__name__)

_MANUFACTURER = "monai-imc"


class DicomwebSource:
    """Pull new studies from a DICOMweb server into the queue.

    Args:
        settings: the server, the poll interval, the search limit and filters.
        queue: the work queue.
        store: where instances are written.
        max_pending_studies: pull nothing more while this many studies have work left.
    """

    def __init__(
        self, settings: PullSettings, queue: WorkQueue, store: IncomingStore, max_pending_studies: int
    ) -> None:
        from dicomweb_client import DICOMwebClient

        self.settings = settings
        self._queue = queue
        self._store = store
        self._max_pending = max_pending_studies
        server = settings.server
        self._client = DICOMwebClient(
            server.url.rstrip("/"), session=server.session(), timeout=server.timeout
        )
        self._client.set_http_retry_params(retry=False)  # the next poll is the retry
        self.last_pulled = 0.0

    def poll(self) -> int:
        """One QIDO-RS search, and a WADO-RS retrieval of each new study; returns the studies queued.

        A server that cannot be reached is logged (the next poll tries again); it does not raise.
        """
        import requests

        where = self.settings.server.public()
        try:
            found = self._client.search_for_studies(
                limit=self.settings.limit,
                fields=["StudyInstanceUID"],
                search_filters=dict(self.settings.filters) or None,
            )
        except (requests.RequestException, OSError) as exc:
            logger.warning("QIDO-RS to %s failed: %s: %s", where, type(exc).__name__, _short(exc))
            return 0
        queued = 0
        for item in found:
            uid = _uid(item)
            if not uid or self._queue.known(uid):
                continue
            if self._queue.pending() >= self._max_pending:
                break
            try:
                datasets = self._client.retrieve_study(uid)
            except (requests.RequestException, OSError) as exc:
                logger.warning("WADO-RS of study %s from %s failed: %s", uid, where, _short(exc))
                continue
            images = [ds for ds in datasets if str(ds.get("Manufacturer", "")) != _MANUFACTURER]
            for dataset in images:
                self._store.write_dataset(dataset)
            self._queue.record_pulled(uid, len(images), time.time())
            self.last_pulled = time.time()
            queued += 1
            logger.info("pulled study %s (%d instances) from %s", uid, len(images), where)
        return queued


def _uid(item: dict[str, Any]) -> str:
    value = item.get("0020000D", {}).get("Value", [])
    return str(value[0]) if value else ""

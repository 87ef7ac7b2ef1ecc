"""Where ``monai-imc serve`` sends the SRs: a DICOMweb server (STOW-RS, ``dicomweb-client``) or a DICOM node
(C-STORE SCU, ``pynetdicom``).

Both report, per file, stored or not with a reason; neither raises for a server that is down (the service
retries with backoff). Sending the same SR twice is harmless: its UIDs are deterministic
(:mod:`monai_imc.dicom.uids`), so the PACS replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import pydicom

from monai_imc.deploy.stow import StowResult, stow_files
from monai_imc.pacs.settings import CStoreSettings, DicomwebSettings

__all__ = ["CStoreDestination", "Destination", "StowDestination", "make_destination"]

logger = logging.getLogger(__name__)

_OK_STATUSES = (0x0000, 0xB000, 0xB006, 0xB007)
"""C-STORE success and warnings (coercion, elements discarded, data set does not match SOP class)."""


@runtime_checkable
class Destination(Protocol):
    """Something that stores SR files."""

    def public(self) -> str:
        """How it is named in logs and reports (no credentials)."""
        ...

    def send(self, paths: Sequence[Path]) -> list[StowResult]:
        """Store the files; one result per file."""
        ...


class StowDestination:
    """STOW-RS to a DICOMweb server.

    Args:
        settings: the server (URL, credentials' source, TLS).
    """

    def __init__(self, settings: DicomwebSettings) -> None:
        self._settings = settings
        self._session = settings.session()

    def public(self) -> str:
        """The server's URL."""
        return self._settings.public()

    def send(self, paths: Sequence[Path]) -> list[StowResult]:
        """One STOW-RS request with every file."""
        return stow_files(self._settings.url, paths, self._settings.timeout, session=self._session)


class CStoreDestination:
    """C-STORE to a DICOM node, one association per batch.

    Args:
        settings: its host, port and AE titles.
    """

    def __init__(self, settings: CStoreSettings) -> None:
        self._settings = settings

    def public(self) -> str:
        """``AE@host:port``."""
        return self._settings.public()

    def send(self, paths: Sequence[Path]) -> list[StowResult]:
        """Associate, C-STORE each file, release."""
        from pynetdicom import AE

        s = self._settings
        datasets = [pydicom.dcmread(p) for p in paths]
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
        if not datasets:
            return []
        ae = AE(ae_title=s.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = s.timeout
        for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
            ae.add_requested_context(sop_class)
        assoc = ae.associate(s.host, s.port, ae_title=s.ae_title)
        if not assoc.is_established:
            how = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
            reason = f"C-STORE to {self.public()} failed: association {how}"
            logger.warning("%s", reason)
            return [StowResult(p, u, False, reason) for p, u in zip(paths, uids)]
        results = []
        try:
            for path, uid, ds in zip(paths, uids, datasets):
                status = assoc.send_c_store(ds)
                code = int(status.Status) if status and "Status" in status else None
                if code in _OK_STATUSES:
                    results.append(StowResult(path, uid, True))
                else:
                    what = "no reply" if code is None else f"status 0x{code:04X}"
                    results.append(StowResult(path, uid, False, f"C-STORE to {self.public()}: {what}"))
        finally:
            assoc.release()
        logger.info(
            "C-STORE to %s: %d of %d stored", self.public(), sum(r.stored for r in results), len(results)
        )
        return results


def make_destination(settings: DicomwebSettings | CStoreSettings) -> Destination:
    """The destination for its settings."""
    if isinstance(settings, DicomwebSettings):
        return StowDestination(settings)
    return CStoreDestination(settings)

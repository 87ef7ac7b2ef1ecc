"""Send the SRs back to a PACS with DICOMweb STOW-RS (PS3.18 10.5), so that they join the original study.

One STOW-RS request with every file, sent by ``dicomweb-client``; the server's reply (a DICOM dataset) lists
each instance as stored (Referenced SOP Sequence) or failed (Failed SOP Sequence, with its Failure Reason).
Credentials never travel in the URL: pass a ``requests`` session that carries them
(:func:`monai_imc.pacs.settings.DicomwebSettings.session` builds one from an environment variable or a file).

Usage::

    from monai_imc.deploy.stow import stow_files

    for result in stow_files("http://pacs:8042/dicom-web", paths):
        result.path, result.stored, result.reason
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from pydicom.dataset import Dataset

if TYPE_CHECKING:
    import requests

__all__ = ["StowResult", "check_url", "public_url", "stow_files"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StowResult:
    """What the server did with one file.

    Attributes:
        path: the file sent.
        sop_instance_uid: its SOP Instance UID.
        stored: whether the server reports it stored.
        reason: why not (``""`` when stored).
    """

    path: Path
    sop_instance_uid: str
    stored: bool
    reason: str = ""


def public_url(url: str) -> str:
    """``url`` without user name and password, for logs and reports."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_url(url: str, what: str = "STOW-RS") -> str:
    """Validate a DICOMweb root: http(s), no credentials in it; returns it without a trailing slash.

    Raises:
        ValueError: not an http(s) URL, or it holds a user name or password (named without them).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} needs an http(s) URL, got {public_url(url)!r}")
    if parts.username or parts.password:
        raise ValueError(
            f"credentials in the {what} URL are not supported ({public_url(url)}): give them in an "
            "environment variable or a file (docs/pacs.md)"
        )
    return url.rstrip("/")


def _reply_uids(reply: Dataset | None) -> tuple[set[str], dict[str, str]]:
    """Stored SOP Instance UIDs, and failed ones with their Failure Reason, from a STOW-RS reply."""
    if reply is None:
        return set(), {}
    stored = {
        str(item.get("ReferencedSOPInstanceUID", "")) for item in reply.get("ReferencedSOPSequence", [])
    }
    failed = {
        str(item.get("ReferencedSOPInstanceUID", "")): str(item.get("FailureReason", ""))
        for item in reply.get("FailedSOPSequence", [])
    }
    return stored, failed


def _error_reply(exc: Exception) -> tuple[int | None, Dataset | None]:
    """The HTTP status and the DICOM JSON body of a failed request, when it has them."""
    response = getattr(exc, "response", None)
    if response is None:
        return None, None
    try:
        return int(response.status_code), Dataset.from_json(response.json())
    except (ValueError, TypeError, KeyError, AttributeError):
        return int(response.status_code), None


def stow_files(
    url: str,
    paths: Sequence[str | os.PathLike[str]],
    timeout: float = 120.0,
    session: requests.Session | None = None,
) -> list[StowResult]:
    """Store DICOM files on a DICOMweb server with one STOW-RS request (``dicomweb-client``).

    Args:
        url: the DICOMweb root (``http://host:8042/dicom-web``).
        paths: the files.
        timeout: seconds to wait for the server.
        session: a ``requests`` session carrying credentials and TLS settings (default: a plain one).

    Returns:
        One result per file. A transport error (server down, HTTP error) makes every file a failure with
        that reason; it does not raise.

    Raises:
        ValueError: ``url`` is not an http(s) URL, or holds credentials.
    """
    import requests
    from dicomweb_client import DICOMwebClient

    root = check_url(url)
    files = [Path(p) for p in paths]
    if not files:
        return []
    datasets = [pydicom.dcmread(p) for p in files]
    uids = [str(ds.SOPInstanceUID) for ds in datasets]
    where = public_url(url)
    client = DICOMwebClient(root, session=session, timeout=timeout)
    client.set_http_retry_params(retry=False)  # one try: the caller decides when to try again
    status: int | None = 200
    try:
        reply: Dataset | None = client.store_instances(datasets)
    except requests.HTTPError as exc:
        status, reply = _error_reply(exc)
    except (requests.RequestException, OSError) as exc:
        reason = f"STOW-RS to {where} failed: {type(exc).__name__}: {_short(exc)}"
        logger.warning("%s", reason)
        return [StowResult(p, u, False, reason) for p, u in zip(files, uids)]
    stored, failed = _reply_uids(reply)
    results = []
    for path, uid in zip(files, uids):
        if uid in stored and status in (200, 202):
            results.append(StowResult(path, uid, True))
            continue
        code = failed.get(uid)
        reason = f"STOW-RS to {where}: HTTP {status}" + (f", failure reason {code}" if code else "")
        results.append(StowResult(path, uid, False, reason))
    logger.info(
        "STOW-RS to %s: HTTP %s, %d of %d stored", where, status, sum(r.stored for r in results), len(results)
    )
    return results


def _short(exc: BaseException, width: int = 160) -> str:
    """An exception's message on one line: the OS error when there is one (``[Errno 111] Connection
    refused``), else the message cut (``requests`` messages repeat the whole URL and pool)."""
    text = " ".join(str(exc).split())
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:
        return errno.group(0).strip()
    return text if len(text) <= width else text[: width - 3] + "..."

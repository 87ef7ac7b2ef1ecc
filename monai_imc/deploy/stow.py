"""Send the SRs back to a PACS with DICOMweb STOW-RS (PS3.18 10.5), so that they join the original study.

One ``POST {url}/studies`` with a ``multipart/related; type="application/dicom"`` body; the server's reply
(a DICOM JSON dataset) lists each instance as stored (Referenced SOP Sequence) or failed (Failed SOP
Sequence, with its Failure Reason). Standard library only.

Usage::

    from monai_imc.deploy.stow import stow_files

    for result in stow_files("http://pacs:8042/dicom-web", paths):
        result.path, result.stored, result.reason
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom

__all__ = ["StowResult", "public_url", "stow_files"]

logger = logging.getLogger(__name__)

_REFERENCED_SOP = "00081199"
_FAILED_SOP = "00081198"
_SOP_INSTANCE_UID = "00081155"
_FAILURE_REASON = "00081197"


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


def _values(dataset: dict[str, object], tag: str) -> list[dict[str, object]]:
    element = dataset.get(tag)
    if not isinstance(element, dict):
        return []
    value = element.get("Value", [])
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _first(item: dict[str, object], tag: str) -> str:
    values = item.get(tag, {})
    value = values.get("Value", []) if isinstance(values, dict) else []
    return str(value[0]) if isinstance(value, list) and value else ""


def stow_files(url: str, paths: Sequence[str | os.PathLike[str]], timeout: float = 120.0) -> list[StowResult]:
    """Store DICOM files on a DICOMweb server with one STOW-RS request.

    Args:
        url: the DICOMweb root (``http://host:8042/dicom-web``); ``/studies`` is appended.
        paths: the files.
        timeout: seconds to wait for the server.

    Returns:
        One result per file. A transport error (server down, HTTP error) makes every file a failure with
        that reason; it does not raise.

    Raises:
        ValueError: ``url`` is not an http(s) URL, or holds credentials.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"STOW-RS needs an http(s) URL, got {public_url(url)!r}")
    if parts.username or parts.password:
        raise ValueError(
            f"credentials in the STOW-RS URL are not supported ({public_url(url)}): use a proxy "
            "or a server that trusts this host"
        )
    files = [Path(p) for p in paths]
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files]
    if not files:
        return []
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            b"--"
            + boundary.encode()
            + b"\r\nContent-Type: application/dicom\r\n\r\n"
            + p.read_bytes()
            + b"\r\n"
            for p in files
        )
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )
    request = urllib.request.Request(
        url.rstrip("/") + "/studies",
        data=body,
        method="POST",
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
    )
    where = public_url(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = f"STOW-RS to {where} failed: {getattr(exc, 'reason', exc)}"
        logger.warning("%s", reason)
        return [StowResult(p, u, False, reason) for p, u in zip(files, uids)]
    try:
        reply = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        reply = {}
    if isinstance(reply, list):
        reply = reply[0] if reply else {}
    stored = {_first(item, _SOP_INSTANCE_UID) for item in _values(reply, _REFERENCED_SOP)}
    failed = {
        _first(item, _SOP_INSTANCE_UID): _first(item, _FAILURE_REASON) for item in _values(reply, _FAILED_SOP)
    }
    results = []
    for path, uid in zip(files, uids):
        if uid in stored and status in (200, 202):
            results.append(StowResult(path, uid, True))
            continue
        code = failed.get(uid)
        reason = f"STOW-RS to {where}: HTTP {status}" + (f", failure reason {code}" if code else "")
        results.append(StowResult(path, uid, False, reason))
    logger.info(
        "STOW-RS to %s: HTTP %d, %d of %d stored", where, status, sum(r.stored for r in results), len(results)
    )
    return results

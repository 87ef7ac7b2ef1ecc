"""The arguments of a run, checked before anything heavy loads (Holoscan, torch, the model).

``monai-imc run`` and the app's ``compose`` call :func:`check_run_arguments` first, so that a wrong path or
URL fails in well under 2 s with one line that says what to do, instead of after a model load or a graph
trace. This module imports the standard library only.

Usage::

    from monai_imc.deploy.checks import RunArgumentError, check_run_arguments

    check_run_arguments("study/", "out/", bundle=None, stow_url=None)   # raises RunArgumentError
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

__all__ = ["BUNDLE_CONFIG", "RunArgumentError", "check_run_arguments", "safe_url"]

BUNDLE_CONFIG = Path("configs") / "inference.json"
"""Where a MONAI bundle keeps its inference config (as ``monai_imc.deploy.context.CONFIG``)."""


class RunArgumentError(ValueError):
    """An argument of a run is wrong; the message names it and says what to do."""


def safe_url(url: str) -> str:
    """``url`` without a user name or password, for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_run_arguments(
    input_folder: str | os.PathLike[str],
    output_folder: str | os.PathLike[str],
    bundle: str | os.PathLike[str] | None = None,
    stow_url: str | None = None,
    device: str | None = None,
    allow_empty: bool = False,
) -> None:
    """Check the arguments of a run; nothing is created or loaded.

    Args:
        input_folder: must be a folder holding at least one file (any folder with ``allow_empty``).
        output_folder: a folder, or a path that does not exist yet (not a file).
        bundle: ``None`` (the default bundle) or a bundle folder, or a folder holding exactly one bundle.
        stow_url: ``None`` or an http(s) URL without credentials.
        device: ``None``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        allow_empty: accept an empty input folder (the run then reports that it found no image series).

    Raises:
        RunArgumentError: the first wrong argument, with what to do.
    """
    source = Path(input_folder)
    if not source.exists():
        raise RunArgumentError(
            f"input folder {source} does not exist: give the folder that holds the DICOM files"
        )
    if not source.is_dir():
        raise RunArgumentError(
            f"input {source} is a file, not a folder: give the folder that holds it (-i {source.parent})"
        )
    if not allow_empty and not any(p.is_file() for p in source.rglob("*")):
        raise RunArgumentError(
            f"input folder {source} holds no file: give the folder of the study's DICOM files"
        )
    target = Path(output_folder)
    if target.exists() and not target.is_dir():
        raise RunArgumentError(
            f"output {target} is a file: give a folder (it is created when it does not exist)"
        )
    parent = next((p for p in (target, *target.parents) if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):
        raise RunArgumentError(
            f"output folder {target} cannot be written ({parent} is read-only): give another"
        )
    if bundle is not None:
        _check_bundle(Path(bundle))
    if stow_url is not None:
        parts = urllib.parse.urlsplit(stow_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RunArgumentError(
                f"--stow {safe_url(stow_url)!r} is not an http(s) URL: give the DICOMweb root, "
                "e.g. http://pacs:8042/dicom-web"
            )
        if parts.username or parts.password:
            raise RunArgumentError(
                f"--stow: credentials in the URL are refused (they would end up in logs and process lists): "
                f"use {safe_url(stow_url)} with a server that trusts this host, or a proxy that adds them"
            )
    if device is not None and not (
        device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise RunArgumentError(f"--device {device!r}: use cpu, cuda or cuda:N")


def _check_bundle(bundle: Path) -> None:
    if not bundle.exists():
        raise RunArgumentError(
            f"bundle {bundle} does not exist: give a MONAI bundle folder (with {BUNDLE_CONFIG}), "
            "or leave --bundle out for the default"
        )
    if (bundle / BUNDLE_CONFIG).is_file():
        return
    if not bundle.is_dir():
        raise RunArgumentError(f"bundle {bundle} is a file: give the bundle's folder (with {BUNDLE_CONFIG})")
    found = [p.name for p in sorted(bundle.iterdir()) if (p / BUNDLE_CONFIG).is_file()]
    if not found:
        raise RunArgumentError(
            f"no MONAI bundle in {bundle}: it needs {BUNDLE_CONFIG} (or one sub-folder with it)"
        )
    if len(found) > 1:
        raise RunArgumentError(
            f"{len(found)} bundles in {bundle} ({', '.join(found)}): name one with --bundle"
        )

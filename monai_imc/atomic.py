"""Atomic file output: write to a temporary file beside the target, then rename, so nothing is left half.

A process killed while writing (``kill -9``) leaves its temporary file behind, never a half target:
:func:`sweep_temporary` removes such leftovers (the app does at start and reports them), and
:func:`remove_pending` removes this process's own temporary files (the app's SIGTERM / SIGINT handler does
before it exits).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TEMPORARY_NAME", "atomic_output", "remove_pending", "sweep_temporary"]

TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")
"""The name of a temporary file of :func:`atomic_output` (``.<target name>.<8 random characters>.tmp``)."""

_pending: set[Path] = set()  # this process's temporary files being written (a registry, like tempfile's)
_lock = threading.Lock()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is renamed to ``path``, on error removed.

    Example::

        with atomic_output("grid.png") as tmp:
            image.save(tmp, format="PNG")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    with _lock:
        _pending.add(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result gets the usual permissions
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with _lock:
            _pending.discard(tmp)


def remove_pending() -> list[Path]:
    """Remove the temporary files this process is writing (for a signal handler about to exit)."""
    with _lock:
        paths = sorted(_pending)
        _pending.clear()
    for tmp in paths:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return paths


def sweep_temporary(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of :func:`atomic_output` that an interrupted process left in ``folder``
    (not recursive); returns their paths. Files this process is writing are left alone."""
    root = Path(folder)
    if not root.is_dir():
        return []
    with _lock:
        mine = set(_pending)
    removed = []
    for path in sorted(root.iterdir()):
        if path.is_file() and TEMPORARY_NAME.match(path.name) and path not in mine:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed

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
_stopping: int | None = None  # the thread that is stopping the process (remove_pending(stop=True))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is renamed to ``path``, on error removed.

    Example::

        with atomic_output("grid.png") as tmp:
            image.save(tmp, format="PNG")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock:  # made and registered at once: a signal handler's remove_pending sees every one
        if _stopping is not None and _stopping != threading.get_ident():
            raise RuntimeError(f"{target}: not written: the process is stopping")
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        tmp = Path(name)
        _pending.add(tmp)
    os.close(fd)
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


def remove_pending(stop: bool = False) -> list[Path]:
    """Remove the temporary files this process is writing (for a signal handler about to exit).

    Args:
        stop: the process is stopping: from now on only the calling thread may start an output (the
            handler's own run report; :func:`atomic_output` raises in any other thread), and the files stay
            registered, so that a second call just before exiting removes one a write in flight made again.
    """
    global _stopping
    with _lock:
        if stop:
            _stopping = threading.get_ident()
        paths = sorted(_pending)
        if not stop:
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

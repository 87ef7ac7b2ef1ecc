"""Named workers for work that runs beside the model (one owner of the process's side threads and processes).

:func:`worker` gives the one single-thread executor of a name, created on first use and shared by the
whole process: :data:`BESIDE_ENCODE` (the work beside the encode) and ``"imc-text"`` (the SMS refinement
beside the encode, :meth:`monai_imc.pipeline.IMCPipeline.run`; where a copy of the refiner runs in the worker
process, :mod:`monai_imc.refine.process`, this thread only waits for it). One thread per name keeps each kind
of side work in order and bounds the threads to the names used.

:func:`beside` runs a picklable function in the named worker *process* instead (the worker thread of the
name waits for it): numpy and scipy release the GIL inside each call, but a task of many small numpy calls
takes the GIL back between them, and the model's Python code waits for it; a process shares no GIL with
the model. The process is ``python -m monai_imc.workers``, started on first use: it imports only
:data:`PRELOAD` and what its tasks name (never the application's ``__main__``; torch and a model only for a
task that needs them, the SMS copy), reads
pickled tasks from its stdin and writes their results to its stdout, and ends with its parent. Where it
cannot start or dies, the worker thread runs the task itself from then on, and says so once.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, TypeVar

__all__ = ["BESIDE_ENCODE", "PRELOAD", "beside", "in_worker_process", "worker"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRELOAD: tuple[str, ...] = ("monai_imc.quality",)
"""What a worker process imports when it starts (numpy and scipy come with it)."""

BESIDE_ENCODE = "imc-beside-encode"
"""The one worker process of the work beside the encode: the perceiver's physics measures and the SMS copy
(:mod:`monai_imc.refine.process`). One process, so they run in turn on the second core: in two processes
they ran side by side at the start of every encode, and the encode lost its core to them (docs/costs.md)."""

_IN_WORKER_PROCESS = False  # set in a worker process by _serve
_WORKERS: dict[str, ThreadPoolExecutor] = {}
_PROCESSES: dict[str, _Child | None] = {}
_LOCK = threading.Lock()


def worker(name: str) -> ThreadPoolExecutor:
    """The single-thread executor named ``name`` (its thread's name starts with ``name``)."""
    with _LOCK:
        if name not in _WORKERS:
            _WORKERS[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return _WORKERS[name]


def in_worker_process() -> bool:
    """Whether this process is a worker process of :func:`beside` (a task runs here, not in its caller's thread)."""
    return _IN_WORKER_PROCESS


def beside(name: str, fn: Callable[..., T], *args: Any) -> Future[T]:
    """``fn(*args)`` beside the caller, in the worker process ``name`` (in its worker thread where no process
    can run). ``fn`` must pickle (a module-level function, or a ``functools.partial`` of one) and so must
    ``args``; an exception ``fn`` raises reaches the future as it would from a thread."""
    return worker(name).submit(_in_process, name, fn, args)


class _Child:
    """One worker process and its pipes (used by one worker thread at a time)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monai_imc.workers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """``(True, result)`` or ``(False, the exception the task raised)``; the pipes' own errors raise."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        pickle.dump((fn, args), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()
        return pickle.load(self.proc.stdout)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the child ends at end of input
        try:
            self.proc.wait(timeout=1)  # a task still running (a copy of a model loading) is not waited for
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _in_process(name: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    child = _child(name)
    if child is not None:
        try:
            ok, value = child.call(fn, args)
        except (OSError, EOFError, pickle.UnpicklingError) as err:  # the process died or cannot be reached
            _give_up(name, err)
        else:  # the task's own error (an OSError too) is its caller's, not the process's
            if not ok:
                raise value
            return value
    return fn(*args)


def _child(name: str) -> _Child | None:
    with _LOCK:
        if name not in _PROCESSES:
            try:
                _PROCESSES[name] = _Child()
            except OSError as err:
                _PROCESSES[name] = None
                logger.warning("worker %s runs in a thread: no worker process (%s)", name, err)
        return _PROCESSES[name]


def _give_up(name: str, err: BaseException) -> None:
    with _LOCK:
        child, _PROCESSES[name] = _PROCESSES.get(name), None
    if child is not None:
        child.proc.kill()
        logger.warning("worker %s runs in a thread from now on: its process failed (%r)", name, err)


@atexit.register
def _close_all() -> None:
    with _LOCK:
        children = [c for c in _PROCESSES.values() if c is not None]
        _PROCESSES.clear()
    for child in children:
        child.close()


def _serve(tasks: IO[bytes], results: IO[bytes]) -> None:
    """The worker process: each pickled ``(fn, args)`` from ``tasks`` answered on ``results``."""
    global _IN_WORKER_PROCESS
    _IN_WORKER_PROCESS = True
    for module in PRELOAD:
        importlib.import_module(module)
    while True:
        try:
            fn, args = pickle.load(tasks)
        except EOFError:
            return
        try:
            reply = (True, fn(*args))
        except Exception as err:  # noqa: BLE001 (any error of the task goes back to the caller, as from a thread)
            reply = (False, err)
        pickle.dump(reply, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


if __name__ == "__main__":
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the results pipe carries pickles only
    # serve from the importable module, not this __main__ copy of it: tasks see its state (in_worker_process)
    importlib.import_module("monai_imc.workers")._serve(sys.stdin.buffer, out)

"""Named worker threads for work that runs beside the model (one owner of the process's side threads).

:func:`worker` gives the one single-thread executor of a name, created on first use and shared by the
whole process: ``"imc-measures"`` (the perceiver's physics measures, beside the encode) and ``"imc-text"``
(the SMS refinement, beside the encode; :meth:`monai_imc.pipeline.IMCPipeline.run`). One thread per name
keeps each kind of side work in order and bounds the threads to the names used.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["worker"]

_WORKERS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def worker(name: str) -> ThreadPoolExecutor:
    """The single-thread executor named ``name`` (its thread's name starts with ``name``)."""
    with _LOCK:
        if name not in _WORKERS:
            _WORKERS[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return _WORKERS[name]

"""SMS in a worker process of its own: the text agents beside the encode, without sharing its interpreter.

:meth:`IMCPipeline.run <monai_imc.pipeline.IMCPipeline.run>` starts the SMS refinement beside the encode. In a
thread of the same process the two share one GIL, and on a CPU both are Python-bound (a small model's forward
is mostly Python): side by side in one process they cost more than in turn (docs/costs.md, session 11). A
:class:`RefinerProcess` runs the refinement in the worker process of the work beside the encode
(:data:`monai_imc.workers.BESIDE_ENCODE`, where the perceiver's physics measures run too, in turn) instead, on a copy of the bundle's refiner built there from the same config
(the model loaded once more, on the CPU, one torch thread); the caller's worker thread only waits on the pipe.

Each call sends the caller's refiner's settings (:func:`settings_of`: thresholds, rounds), so a threshold
changed in memory (a calibration run) reaches the copy; the model, prompts and word lists are the config's.

The copy is built on first use, beside the caller; until it is ready, and where it cannot be built or its
process dies, the caller's own refiner refines in the caller's thread: the same result (a warning once on
failure). For a model on a GPU keep the thread (do not configure a RefinerProcess): a
second copy of a 7B model would not fit beside the first. The bundled reference bundle configures one for the
CPU only (``refine_process`` in its ``inference.json``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from pathlib import Path

from monai_imc.refine.records import Refinement
from monai_imc.refine.refiner import SMSRefiner
from monai_imc.workers import BESIDE_ENCODE, beside, in_worker_process

__all__ = ["RefinerProcess", "settings_of"]

logger = logging.getLogger(__name__)

Setting = bool | int | float | str | None

_COPIES: dict[str, SMSRefiner] = {}  # in the worker process: bundle folder -> the refiner its config builds


def settings_of(refiner: SMSRefiner) -> dict[str, Setting]:
    """The refiner's public scalar settings (thresholds, margins, rounds, ...), by attribute name."""
    return {
        name: value
        for name, value in vars(refiner).items()
        if not name.startswith("_") and (value is None or isinstance(value, (bool, int, float, str)))
    }


def build_copy(bundle: str) -> None:
    """In the worker process: build the refiner of the bundle's config once (CPU, one torch thread).

    Raises:
        LookupError: called outside a worker process (where the worker's thread runs the task after the
            process died): a second model is never loaded into the caller's process.
    """
    if not in_worker_process():
        raise LookupError("the SMS copy is built in the worker process only")
    if bundle not in _COPIES:
        import torch

        from monai_imc.bundle import bundle_parser

        torch.set_num_threads(1)  # beside the caller's model: one core
        _COPIES[bundle] = bundle_parser(bundle, {"device": "cpu"}).get_parsed_content("refiner")


def refine_copy(bundle: str, settings: dict[str, Setting], text: str) -> Refinement:
    """In the worker process: the copy's refinement of ``text`` with the caller's ``settings``.

    Raises:
        LookupError: no copy of that bundle's refiner in this process.
    """
    copy = _COPIES.get(bundle)
    if copy is None:
        raise LookupError(f"no SMS copy of {bundle} in process {os.getpid()}")
    for name, value in settings.items():
        setattr(copy, name, value)
    return copy.refine(text)


class RefinerProcess:
    """:meth:`refine` of a bundle's refiner, run by a copy in the worker process beside the encode.

    Args:
        refiner: the caller's refiner (built from the same bundle config): its settings go with every call,
            and it refines itself where the copy cannot (not built yet, failed, its process died).
        bundle: the bundle folder whose config's ``refiner`` the copy is built from.

    The copy is built on the first :meth:`refine` (or :meth:`start`), beside the caller; until it is ready,
    the caller's refiner refines (so a one-off question never waits for a second model to load, and a
    process that never refines beside its encode, like the app, never loads one).
    """

    def __init__(self, refiner: SMSRefiner, bundle: str | os.PathLike[str]) -> None:
        self.refiner = refiner
        self.bundle = str(Path(bundle).resolve())
        self._ready: Future[None] | None = None
        self._local = False

    def start(self) -> Future[None]:
        """Start building the copy in the worker process (once); the future is done when it is ready."""
        if self._ready is None:
            self._ready = beside(BESIDE_ENCODE, build_copy, self.bundle)
        return self._ready

    @property
    def ready(self) -> bool:
        """Whether the copy refines (built, and its process has not failed)."""
        return (
            not self._local
            and self._ready is not None
            and self._ready.done()
            and self._ready.exception() is None
        )

    def refine(self, text: str) -> Refinement:
        """:meth:`SMSRefiner.refine` of ``text``: by the copy in the worker process once it is ready, else here.

        Raises:
            TypeError, ValueError: as :meth:`SMSRefiner.refine` (the copy's own errors reach the caller; only
                a copy that could not be built, or whose process died, hands the work back here).
        """
        ready = self.start()
        if not self._local and ready.done():
            if ready.exception() is not None:
                self._fail(ready.exception())
            else:
                try:
                    return beside(
                        BESIDE_ENCODE, refine_copy, self.bundle, settings_of(self.refiner), text
                    ).result()
                except LookupError as err:  # no copy there: its process died and the task ran here
                    self._fail(err)
        return self.refiner.refine(text)

    def _fail(self, err: BaseException | None) -> None:
        self._local = True
        logger.warning(
            "SMS refines in this process from now on: its copy in the worker process failed (%r)", err
        )

"""Per-stage timings: one accumulator, filled where each stage runs, summed per series and per run.

The stages (:data:`STAGES`) are timed with :func:`timed` where they run: the steps of
:class:`~monai_imc.pipeline.IMCPipeline` (encode, perceive, calibrate, refine, answer), the app's steps
(:func:`monai_imc.deploy.work.run_step`: views, perceive, calibrate, refine, answer, sr) and the DICOM
reader (read). :func:`timed` records into the :class:`StageTimer` made active for the current thread
(:meth:`StageTimer.active`); with none active it costs one context-variable lookup and records nothing.

Times are exclusive: a stage nested in another (encode inside the app's perceive step) is subtracted
from its parent, so the stages of a series add up to the time spent on it.

Example::

    timer = StageTimer()
    with timer.active():
        with timed("perceive", key="series-1"):
            with timed("encode"):  # counted under series-1, and no longer under perceive
                ...
    timer.totals()   # {"encode": 0.8, "perceive": 0.1}
    print(timer.table())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["APP_STAGES", "MODEL_STAGES", "STAGES", "StageTimer", "timed"]

STAGES: tuple[str, ...] = (
    "read",
    "views",
    "encode",
    "perceive",
    "calibrate",
    "restore",
    "refine",
    "answer",
    "sr",
)
"""The stages, in the order a study goes through them."""

MODEL_STAGES: tuple[str, ...] = ("encode", "perceive", "calibrate", "restore", "refine", "answer")
"""The stages that run the model or work on its features (the rest is the app's overhead)."""

APP_STAGES: tuple[str, ...] = ("read", "views", "sr")
"""The app's own stages: DICOM in, views, SR out."""


@dataclass
class _Frame:
    timer: StageTimer
    key: str | None
    child_seconds: float = 0.0


_CURRENT: ContextVar[_Frame | None] = ContextVar("monai_imc_timing", default=None)


@dataclass
class StageTimer:
    """Seconds and calls per stage, per key (a series) and in all; thread-safe to add to.

    Attributes:
        seconds: ``{key: {stage: seconds}}``; key ``""`` holds what belongs to no series (reading the folder).
        calls: ``{stage: number of timed blocks}``.
        clock: the clock (default :func:`time.perf_counter`).
        started: the clock when the timer was made (the run's wall clock starts there).
    """

    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False, compare=False)
    started: float = field(default=-1.0)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def add(self, stage: str, seconds: float, key: str | None = None) -> None:
        """Add ``seconds`` to ``stage`` (of ``key``)."""
        with self._lock:
            per_key = self.seconds.setdefault(key or "", {})
            per_key[stage] = per_key.get(stage, 0.0) + seconds
            self.calls[stage] = self.calls.get(stage, 0) + 1

    @contextmanager
    def active(self, key: str | None = None) -> Iterator[StageTimer]:
        """Make this timer the one :func:`timed` records into, in this thread, for the block."""
        token = _CURRENT.set(_Frame(self, key))
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def totals(self) -> dict[str, float]:
        """Seconds per stage over every key, in :data:`STAGES` order (then any other stage)."""
        with self._lock:
            out: dict[str, float] = {}
            for per_key in self.seconds.values():
                for stage, seconds in per_key.items():
                    out[stage] = out.get(stage, 0.0) + seconds
        return {s: out[s] for s in (*STAGES, *sorted(set(out) - set(STAGES))) if s in out}

    def wall_seconds(self) -> float:
        """Seconds since the timer was made."""
        return self.clock() - self.started

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: per stage, per series, the model's and the app's share, the wall time."""
        totals = self.totals()
        model = sum(totals.get(s, 0.0) for s in MODEL_STAGES)
        app = sum(totals.get(s, 0.0) for s in APP_STAGES)
        with self._lock:
            series = {k: dict(v) for k, v in self.seconds.items() if k}
            calls = dict(self.calls)
        return {
            "stages": {s: round(v, 6) for s, v in totals.items()},
            "calls": calls,
            "series": {k: {s: round(x, 6) for s, x in v.items()} for k, v in series.items()},
            "model_seconds": round(model, 6),
            "app_seconds": round(app, 6),
            "app_overhead_ratio": round(app / model, 6) if model > 0 else None,
            "wall_seconds": round(self.wall_seconds(), 6),
        }

    def table(self) -> str:
        """The timings as a plain-text table (``monai-imc run --profile``)."""
        summary = self.to_dict()
        stages = summary["stages"]
        wall = summary["wall_seconds"]
        lines = [f"{'stage':10s} {'seconds':>9s} {'calls':>6s} {'share':>6s}"]
        for stage, seconds in stages.items():
            share = f"{100 * seconds / wall:5.1f}%" if wall > 0 else "     -"
            lines.append(f"{stage:10s} {seconds:9.3f} {summary['calls'].get(stage, 0):6d} {share}")
        lines.append(f"{'model':10s} {summary['model_seconds']:9.3f}")
        lines.append(f"{'app':10s} {summary['app_seconds']:9.3f}   (read + views + sr)")
        lines.append(f"{'wall':10s} {wall:9.3f}")
        ratio = summary["app_overhead_ratio"]
        if ratio is not None:
            lines.append(f"app overhead / model time: {ratio:.3f}")
        for key, per_stage in summary["series"].items():
            lines.append(
                f"series {key}: {sum(per_stage.values()):.3f} s ("
                + ", ".join(f"{s} {v:.3f}" for s, v in per_stage.items())
                + ")"
            )
        return "\n".join(lines)


@contextmanager
def timed(stage: str, key: str | None = None) -> Iterator[None]:
    """Time the block as ``stage`` in the active :class:`StageTimer` (nothing when none is active).

    Args:
        stage: one of :data:`STAGES` (another name is kept too, after them).
        key: the series the block works on (default: the enclosing block's); nested blocks inherit it.
    """
    parent = _CURRENT.get()
    if parent is None:
        yield
        return
    frame = _Frame(parent.timer, key if key is not None else parent.key)
    token = _CURRENT.set(frame)
    clock = parent.timer.clock
    start = clock()
    try:
        yield
    finally:
        elapsed = clock() - start
        _CURRENT.reset(token)
        parent.child_seconds += elapsed
        frame.timer.add(stage, elapsed - frame.child_seconds, frame.key)

"""The per-stage timer: exclusive times of nested stages, per series and in all, inactive when not asked."""

from __future__ import annotations

import threading

from monai_imc.timing import StageTimer, timed


class ManualClock:
    """A clock the test moves by hand (so the accounting, not the machine's speed, is tested)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nested_stages_are_exclusive_and_per_series() -> None:
    clock = ManualClock()
    timer = StageTimer(clock=clock)
    with timer.active():
        with timed("read"):
            clock.now += 2.0
        with timed("perceive", key="s1"):
            clock.now += 0.5
            with timed("encode"):  # inherits s1
                clock.now += 3.0
            clock.now += 0.25
        with timed("answer", key="s2"):
            clock.now += 1.0
    assert timer.seconds == {
        "": {"read": 2.0},
        "s1": {"perceive": 0.75, "encode": 3.0},
        "s2": {"answer": 1.0},
    }
    assert list(timer.totals()) == ["read", "encode", "perceive", "answer"], "in the order of a study"
    summary = timer.to_dict()
    assert summary["model_seconds"] == 4.75 and summary["app_seconds"] == 2.0
    assert summary["app_overhead_ratio"] == round(2.0 / 4.75, 6)
    assert summary["wall_seconds"] == 6.75 == sum(timer.totals().values())
    table = timer.table()
    assert "encode" in table and "series s1: 3.750 s" in table


def test_nothing_is_recorded_without_an_active_timer() -> None:
    timer = StageTimer()
    with timed("encode"):
        pass
    assert timer.seconds == {} and timer.to_dict()["app_overhead_ratio"] is None


def test_a_timer_is_active_in_its_own_thread_only() -> None:
    timer = StageTimer()
    seen: list[bool] = []

    def other() -> None:
        with timed("encode"):
            seen.append(True)

    with timer.active():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        with timed("answer"):
            pass
    assert seen == [True] and set(timer.totals()) == {"answer"}

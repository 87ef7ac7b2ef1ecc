"""The named side workers: a worker process for picklable tasks (no GIL shared with the model), its thread
where no process can run or the process died."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from monai_imc import workers
from monai_imc.quality import measure_view, measure_views


def test_a_task_runs_in_the_worker_process_and_returns_what_it_would_here() -> None:
    assert workers.beside("test-workers", os.getpid).result(timeout=60) != os.getpid()
    rng = np.random.default_rng(0)
    views = [(rng.random((96, 80)) * 255).astype(np.uint8), np.zeros((8, 8), np.uint8)]
    there = workers.beside("test-workers", measure_views, views, ("noise_sigma", "blockiness")).result(
        timeout=60
    )
    here = [measure_view(v, ("noise_sigma", "blockiness")) for v in views]
    assert there[1] is None and here[1] is None, "a view too small to assess is not measured"
    assert there[0][0] == here[0][0] and np.array_equal(there[0][1], here[0][1])
    with pytest.raises(KeyError, match="not_a_measure"):  # the task's own error, as from a thread
        workers.beside("test-workers", measure_views, views[:1], ("not_a_measure",)).result(timeout=60)


def test_a_dead_process_leaves_the_work_to_the_thread(caplog: pytest.LogCaptureFixture) -> None:
    pid = workers.beside("test-workers-dead", os.getpid).result(timeout=60)
    assert pid != os.getpid()
    os.kill(pid, 9)
    with caplog.at_level(logging.WARNING, logger="monai_imc.workers"):
        assert workers.beside("test-workers-dead", os.getpid).result(timeout=60) == os.getpid()
    assert "its process failed" in caplog.text
    assert workers.beside("test-workers-dead", os.getpid).result(timeout=60) == os.getpid(), (
        "thread from now on"
    )


def test_no_process_means_the_thread(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(workers._Child, "__init__", refuse)
    with caplog.at_level(logging.WARNING, logger="monai_imc.workers"):
        assert workers.beside("test-workers-none", os.getpid).result(timeout=60) == os.getpid()
    assert "no worker process (no processes here)" in caplog.text


def test_the_measures_worker_warms_up_in_its_own_process_on_a_view_every_measure_reads() -> None:
    from monai_imc.perceive import warm_up_measures_worker
    from monai_imc.quality import MEASURES, warm_up_view

    measured = measure_view(warm_up_view())  # what the warm-up measures: assessable, so every measure runs
    assert measured is not None and set(measured[0]) == set(MEASURES) and np.isfinite(measured[1]).all()
    assert warm_up_measures_worker().result(timeout=60) is None
    assert workers.beside(workers.BESIDE_ENCODE, os.getpid).result(timeout=60) != os.getpid()


def test_a_tasks_own_os_error_reaches_its_caller_and_the_process_serves_on(tmp_path) -> None:
    pid = workers.beside("test-workers-oserror", os.getpid).result(timeout=60)
    with pytest.raises(FileNotFoundError):  # an OSError raised by the task, not a broken pipe
        workers.beside("test-workers-oserror", os.stat, str(tmp_path / "missing")).result(timeout=60)
    assert workers.beside("test-workers-oserror", os.getpid).result(timeout=60) == pid != os.getpid()

"""``monai-imc serve`` killed with SIGKILL and restarted: every study answered, exactly one SR per series.

The first test runs the real command (``python -m monai_imc.cli serve``, real app and model) and kills it
mid-study. The kill loop restarts the service 20 times, so it uses the stand-in for the model step
(tests/pacs_standin.py: the same command, settings, queue, listener and C-STORE destination; the model,
~20 s to load at each start on this machine, is replaced by a writer of real SRs).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import REPO
from orthanc_helpers import Orthanc, free_port
from pacs_helpers import make_study, referenced_series, send, srs_in_pacs, wait_for_listener

from monai_imc.pacs.queue import WorkQueue

ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "OMP_NUM_THREADS": "1"}


def _serve(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:
        return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=handle, stderr=subprocess.STDOUT)


def _counts(url: str, studies: list[tuple[str, list[str], list[Path]]]) -> tuple[int, int]:
    """(duplicate SRs, studies with a series lacking its SR) in the PACS."""
    duplicates = lost = 0
    for study, series, _ in studies:
        refs = [tuple(referenced_series(sr)) for sr in srs_in_pacs(url, study)]
        duplicates += sum(max(0, refs.count((s,)) - 1) for s in series)
        lost += any(refs.count((s,)) == 0 for s in series)
    return duplicates, lost


def _state(db: Path) -> str:
    try:
        rows = WorkQueue(db).rows()
    except Exception:  # noqa: BLE001  (the service may be creating it)
        return ""
    return str(rows[0]["state"]) if rows else ""


def test_serve_killed_mid_study_resumes_with_one_sr_per_series(orthanc: Orthanc, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", 30, series=("CT_small.dcm", "MR_small.dcm", "CT_small.dcm"))
    files = study[2]
    port, out = free_port(), tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "monai_imc.cli",
        "serve",
        "-o",
        str(out),
        "--port",
        str(port),
        "--allow-calling-ae",
        "ROUTER",
        "--quiet-seconds",
        "1",
        "--stow",
        orthanc.url,
        "--exit-when-idle",
        "3",
        "--device",
        "cpu",
    ]
    first = _serve(cmd, tmp_path / "serve.log")
    try:
        wait_for_listener(port, 240, alive=lambda: first.poll() is None)
        assert send(files[:3], port, deadline=time.monotonic() + 60) == 3  # half the study
        deadline = time.monotonic() + 60
        while _state(out / "imc_queue.sqlite") in ("", "receiving") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        first.kill()  # SIGKILL, mid-study: half received, its first part in work
        first.wait()
    second = _serve(cmd, tmp_path / "serve.log")
    try:
        wait_for_listener(port, 240, alive=lambda: second.poll() is None)
        assert send(files, port, deadline=time.monotonic() + 60) == len(files)  # the router sends it all
        assert second.wait(timeout=240) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert _counts(orthanc.url, [study]) == (0, 0)
    assert len(srs_in_pacs(orthanc.url, study[0])) == 3


def test_kill_loop_loses_nothing_and_duplicates_nothing(orthanc: Orthanc, tmp_path: Path) -> None:
    rng = random.Random(18)
    studies = [make_study(tmp_path / "src", 40 + i) for i in range(6)]
    port, out = free_port(), tmp_path / "out"
    cmd = [
        sys.executable,
        str(REPO / "tests" / "pacs_standin.py"),
        "-o",
        str(out),
        "--port",
        str(port),
        "--allow-calling-ae",
        "ROUTER",
        "--quiet-seconds",
        "0.5",
        "--cstore",
        f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}",
        "--retry-seconds",
        "0.2",
        "--retry-max-seconds",
        "1",
    ]
    sent: list[int] = []
    router = threading.Thread(
        target=lambda: sent.append(
            sum(send(files, port, deadline=time.monotonic() + 150) for _, _, files in studies)
        )
    )
    router.start()
    kills, stop_by = 0, time.monotonic() + 120
    while kills < 8 and time.monotonic() < stop_by:  # 8 random points (20 in the measurement run)
        process = _serve(cmd, tmp_path / "serve.log")
        time.sleep(rng.uniform(0.5, 3.0))  # a random point: starting, receiving, processing, delivering
        process.kill()
        process.wait()
        kills += 1
    final = _serve([*cmd, "--exit-when-idle", "3"], tmp_path / "serve.log")
    try:
        router.join(timeout=150)
        final.wait(timeout=120)
    finally:
        if final.poll() is None:
            final.kill()
            final.wait()
    assert kills >= 8
    assert sent == [sum(len(files) for _, _, files in studies)]
    states = [row["state"] for row in WorkQueue(out / "imc_queue.sqlite").rows()]
    duplicates, lost = _counts(orthanc.url, studies)
    print(
        f"kill loop: {kills} kills, {len(studies)} studies, {duplicates} duplicate SRs, {lost} lost studies"
    )
    assert (duplicates, lost) == (0, 0) and states == ["done"] * len(studies)

"""A run killed (``kill -9``) or stopped (SIGTERM) and run again: complete output, no partial file, a run
report that says what happened. The runs are real ``monai-imc run`` processes on three series of the sample
study (bench/kill_rerun.py kills the app at many more points, on as many series as asked)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from helpers import REPO

from monai_imc.atomic import TEMPORARY_NAME
from monai_imc.deploy.report import REPORT_NAME
from monai_imc.deploy.sample import SampleStudy
from monai_imc.deploy.sr_step import sr_file_name

START_LIMIT = 600.0  # seconds until the first SR (Holoscan and the model load first; the machine is shared)


SERIES = ("ct", "mr", "mr_motion4")  # three series: one SR before the kill, the others after


@pytest.fixture(scope="module")
def small_study(sample_study: SampleStudy, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """Three series of the sample study and its sidecar; their Series Instance UIDs."""
    folder = tmp_path_factory.mktemp("small_study")
    chosen = [s for s in sample_study.series if s.name in SERIES]
    for series in chosen:
        shutil.copytree(series.path.parent, folder / series.name)
    shutil.copy(sample_study.sidecar, folder / sample_study.sidecar.name)
    return folder, {s.series_instance_uid for s in chosen}


def _start(input_folder: Path, output_folder: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "monai_imc.cli",
        "run",
        "-i",
        str(input_folder),
        "-o",
        str(output_folder),
    ]
    return subprocess.Popen(
        [*command, *extra], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stop_at_first_sr(process: subprocess.Popen[str], output_folder: Path, signum: int) -> None:
    """Send ``signum`` as soon as the first SR is in place."""
    deadline = time.monotonic() + START_LIMIT
    try:
        while not list(output_folder.glob("IMC_SR_*.dcm")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no SR within the start limit"
            time.sleep(0.01)
        process.send_signal(signum)
        process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # the test failed: leave no run behind
            process.kill()
            process.communicate()


def _report(output_folder: Path) -> dict:
    return json.loads((output_folder / REPORT_NAME).read_text())


def test_kill_9_then_rerun_completes(small_study: tuple[Path, set[str]], tmp_path: Path) -> None:
    study, every = small_study
    assert len(every) == len(SERIES)
    out = tmp_path / "out"
    killed = _start(study, out)
    _stop_at_first_sr(killed, out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    before = _report(out)  # saved as the run went: what it had done when it was killed
    assert before["state"] == "running"
    done_before = {o["name"] for o in before["outcomes"] if o["status"] == "written"}
    # a kill inside a write leaves a temporary file beside the target; one is planted here, since hitting
    # that instant with a signal is a matter of luck
    leftover = out / f".{sr_file_name('1.2.3')}.k9x_1234.tmp"
    leftover.write_bytes(b"half an SR")

    rerun = _start(study, out, "--skip-existing")
    try:
        _, stderr = rerun.communicate(timeout=900)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.communicate()
    assert rerun.returncode == 0, stderr[-3000:]
    after = _report(out)
    assert after["state"] == "complete" and after["exit_code"] == 0
    assert any("did not finish" in note for note in after["notes"]), after["notes"]
    removed = [o for o in after["outcomes"] if o["status"] == "removed"]
    # the planted file, and any the kill really left (it can hit the report's own atomic save)
    assert str(leftover) in [o["name"] for o in removed]
    assert all(TEMPORARY_NAME.match(Path(o["name"]).name) and "interrupted run" in o["reason"] for o in removed)
    kept = {o["name"] for o in after["outcomes"] if o["status"] == "kept"}
    written = {o["name"] for o in after["outcomes"] if o["status"] == "written"}
    assert done_before <= kept and not kept & written
    assert kept | written == every
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([*(sr_file_name(u) for u in every), REPORT_NAME])
    assert not [n for n in names if TEMPORARY_NAME.match(n)]
    for uid in every:
        assert pydicom.dcmread(out / sr_file_name(uid)).Modality == "SR"


def test_sigterm_completes_the_report(small_study: tuple[Path, set[str]], tmp_path: Path) -> None:
    out = tmp_path / "out"
    stopped = _start(small_study[0], out)
    _stop_at_first_sr(stopped, out, signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM
    report = _report(out)
    assert report["state"] == "interrupted"
    assert any("SIGTERM" in note for note in report["notes"]), report["notes"]
    assert report["written"] >= 1 and report["exit_code"] == 0 or report["failed"]
    assert not [p for p in out.iterdir() if TEMPORARY_NAME.match(p.name)]

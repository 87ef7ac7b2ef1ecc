"""Kill the app at many points, run it again, and check the output: ``kill -9`` at any point, then rerun.

One reference run of ``python -m monai_imc.cli run`` on a study (default: the sample study, written to a
scratch folder) gives the run's length and the SRs a complete run writes. Then, for each kill point (a delay
spread over the reference run's length, or an event: the first SR in place, the report naming two SRs),
a fresh run in a fresh output folder is sent SIGKILL there, and run again to completion with
``--skip-existing``. One more run is stopped with SIGTERM at the first SR, then run again.

Each rerun is checked: its exit code is the reference run's; it leaves one SR per series the reference run
wrote (each readable, ``dciodvfy`` 0 errors where dicom3tools is installed) and nothing else but the report;
no temporary file; a report ``complete`` that notes the unfinished previous run (when its report said so),
lists as ``removed`` exactly the temporary files the killed run left, and accounts for every series as
``kept`` (its SR survived the kill, current) or ``written`` (redone).

Usage::

    nice -n 15 python bench/kill_rerun.py --out /tmp/kill_rerun.json [--input STUDY] [--points 8]

Prints a table (one row per kill) and writes it as JSON; exit code 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monai_imc.atomic import TEMPORARY_NAME
from monai_imc.deploy.report import REPORT_NAME

RUN_LIMIT = 1800.0  # seconds one run may take on a loaded machine
_LIVE: list[subprocess.Popen[bytes]] = []  # runs started and not yet ended (killed if this script ends)


def _start(input_folder: Path, output_folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HOLOSCAN_LOG_LEVEL": "ERROR"}
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
    process = subprocess.Popen(
        [*command, *extra], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _LIVE.append(process)
    return process


def _finish(process: subprocess.Popen[bytes], limit: float = RUN_LIMIT) -> tuple[int, str]:
    try:
        _, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return process.returncode, stderr.decode(errors="replace")[-2000:]


def _report(folder: Path) -> dict | None:
    try:
        return json.loads((folder / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return None


def _srs(folder: Path) -> list[Path]:
    return sorted(folder.glob("IMC_SR_*.dcm")) if folder.is_dir() else []


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if TEMPORARY_NAME.match(p.name)) if folder.is_dir() else []


def _dciodvfy_errors(path: Path) -> int:
    tool = shutil.which("dciodvfy")
    if tool is None:
        return 0
    run = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True, timeout=120)
    return sum(line.startswith("Error") for line in (run.stdout + run.stderr).splitlines())


def _wait_for(process: subprocess.Popen[bytes], ready, limit: float = RUN_LIMIT) -> bool:
    """Poll until ``ready()`` (True) or the process ends (False)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def _written_in_report(folder: Path) -> int:
    report = _report(folder)
    return int(report.get("written", 0)) if report else 0


def stop_run(input_folder: Path, out: Path, point: str | float, signum: int) -> dict:
    """Start a run and send ``signum`` at ``point`` (seconds after start, or an event name)."""
    process = _start(input_folder, out)
    started = time.monotonic()
    if point == "first SR":
        hit = _wait_for(process, lambda: bool(_srs(out)))
    elif point == "two SRs in report":
        hit = _wait_for(process, lambda: _written_in_report(out) >= 2)
    else:
        hit = _wait_for(process, lambda: time.monotonic() - started >= float(point))
    at = time.monotonic() - started
    if hit:
        process.send_signal(signum)
    rc, _ = _finish(process)
    report = _report(out)
    return {
        "signal": signal.Signals(signum).name,
        "point": point if isinstance(point, str) else f"{point:.1f} s",
        "sent_at_s": round(at, 1),
        "finished_first": not hit,
        "stopped_rc": rc,
        "srs_after_stop": len(_srs(out)),
        "temps_after_stop": len(_temporaries(out)),
        "report_after_stop": report["state"] if report else "none",
        "_temps": [str(p) for p in _temporaries(out)],
        "_srs": {p.name for p in _srs(out)},
    }


def rerun_and_check(input_folder: Path, out: Path, row: dict, reference: dict) -> dict:
    """Run again with ``--skip-existing`` to completion and check the output (the row's checks)."""
    started = time.monotonic()
    rc, stderr = _finish(_start(input_folder, out, "--skip-existing"))
    row["rerun_s"] = round(time.monotonic() - started, 1)
    row["rerun_rc"] = rc
    problems = []
    if rc != reference["rc"]:
        problems.append(f"rerun exit code {rc}, reference {reference['rc']}: {stderr[-300:]}")
    names = {p.name for p in out.iterdir()}
    srs = {p.name for p in _srs(out)}
    if srs != reference["srs"]:
        problems.append(f"SRs differ from the reference run's: {sorted(srs ^ reference['srs'])}")
    others = names - srs - {REPORT_NAME}
    if others:
        problems.append(f"other files left: {sorted(others)}")
    errors = 0
    for path in _srs(out):
        try:
            pydicom.dcmread(path)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{path.name} unreadable: {exc}")
        errors += _dciodvfy_errors(path)
    row["dciodvfy_errors"] = errors
    row["temps_after_rerun"] = len(_temporaries(out))
    report = _report(out)
    if report is None:
        problems.append("no run report")
        report = {"outcomes": [], "notes": [], "state": "none"}
    row["report_state"] = report["state"]
    if report["state"] != "complete":
        problems.append(f"report state {report['state']!r}")
    outcomes = report["outcomes"]
    removed = sorted(o["name"] for o in outcomes if o["status"] == "removed")
    kept = {o["name"] for o in outcomes if o["status"] == "kept"}
    written = {o["name"] for o in outcomes if o["status"] == "written"}
    row["removed"], row["kept"], row["redone"] = len(removed), len(kept), len(written)
    if removed != sorted(row["_temps"]):
        problems.append(f"report's removed {removed} != temporaries left {row['_temps']}")
    unfinished = row["report_after_stop"] in ("running", "interrupted")
    noted = any("did not finish" in n for n in report["notes"])
    row["noted_unfinished"] = noted
    if unfinished != noted:
        problems.append(f"previous report {row['report_after_stop']!r} but note {noted}")
    if kept & written or (kept | written) != reference["series"]:
        problems.append(f"series: kept {len(kept)} + redone {len(written)} != {len(reference['series'])}")
    survived = {o["name"] for o in outcomes if o["status"] == "kept" and o.get("sr_path")}
    if len(survived) != len(kept) or len(kept) > len(row["_srs"]):
        problems.append("a kept series without its SR")
    row["ok"] = not problems
    row["problems"] = problems
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=None, help="a study folder (default: the sample study)")
    parser.add_argument(
        "--series", default="", help="sample study series to use, comma-separated (default: all)"
    )
    parser.add_argument("--points", type=int, default=8, help="timed kill points over the run (default 8)")
    parser.add_argument("--out", default="kill_rerun.json", help="the JSON table to write")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    try:
        return _bench(args)
    finally:
        for process in _LIVE:
            if process.poll() is None:
                process.kill()


def _bench(args: argparse.Namespace) -> int:

    work = Path(args.work or tempfile.mkdtemp(prefix="kill_rerun_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.input is None:
        from monai_imc.deploy.sample import write_sample_study

        study = write_sample_study(work / "study")
        input_folder = study.folder
        if args.series:
            input_folder = work / "subset"
            for series in study.series:
                if series.name in args.series.split(","):
                    shutil.copytree(series.path.parent, input_folder / series.name, dirs_exist_ok=True)
            shutil.copy(study.sidecar, input_folder / study.sidecar.name)
    else:
        input_folder = Path(args.input)

    started = time.monotonic()
    ref_out = work / "reference"
    rc, stderr = _finish(_start(input_folder, ref_out))
    length = time.monotonic() - started
    report = _report(ref_out) or {"outcomes": []}
    reference = {
        "rc": rc,
        "srs": {p.name for p in _srs(ref_out)},
        "series": {o["name"] for o in report["outcomes"] if o["status"] == "written"},
    }
    print(f"reference run: {length:.1f} s, exit code {rc}, {len(reference['srs'])} SR(s)", flush=True)
    if not reference["srs"]:
        print(stderr, file=sys.stderr)
        return 1

    points: list[tuple[str | float, int]] = [
        (length * k / (args.points + 1), signal.SIGKILL) for k in range(1, args.points + 1)
    ]
    points += [
        ("first SR", signal.SIGKILL),
        ("two SRs in report", signal.SIGKILL),
        ("first SR", signal.SIGTERM),
    ]
    rows = []
    header = (
        f"{'signal':8s} {'point':>18s} {'sent s':>7s} {'rc':>4s} {'SRs':>4s} {'tmp':>4s} {'report':>11s} | "
        f"{'rerun rc':>8s} {'removed':>7s} {'kept':>4s} {'redone':>6s} {'noted':>5s} {'dciodvfy':>8s} "
        f"{'tmp':>4s} {'state':>8s} ok"
    )
    print(header, flush=True)
    for i, (point, signum) in enumerate(points):
        out = work / f"run{i}"
        row = stop_run(input_folder, out, point, signum)
        if signum == signal.SIGTERM:
            report = _report(out) or {"notes": []}
            sigterm_ok = (
                row["finished_first"]
                or (
                    row["stopped_rc"] == 128 + signal.SIGTERM
                    and row["report_after_stop"] == "interrupted"
                    and any("SIGTERM" in n for n in report["notes"])
                )
            ) and row["temps_after_stop"] == 0
            row["sigterm_report_ok"] = sigterm_ok
        row = rerun_and_check(input_folder, out, row, reference)
        if signum == signal.SIGTERM and not row["sigterm_report_ok"]:
            row["ok"] = False
            row["problems"].append("SIGTERM: no interrupted report, or temporaries left")
        rows.append(row)
        print(
            f"{row['signal']:8s} {row['point']:>18s} {row['sent_at_s']:7.1f} {row['stopped_rc']:4d} "
            f"{row['srs_after_stop']:4d} {row['temps_after_stop']:4d} {row['report_after_stop']:>11s} | "
            f"{row['rerun_rc']:8d} {row['removed']:7d} {row['kept']:4d} {row['redone']:6d} "
            f"{'yes' if row['noted_unfinished'] else 'no':>5s} {row['dciodvfy_errors']:8d} "
            f"{row['temps_after_rerun']:4d} {row['report_state']:>8s} {'yes' if row['ok'] else 'NO'}",
            flush=True,
        )
        for problem in row["problems"]:
            print(f"    problem: {problem}", flush=True)
        _save(args.out, input_folder, length, rc, reference, rows)  # a table so far, should this be stopped
    table = _save(args.out, input_folder, length, rc, reference, rows)
    print(f"{sum(r['ok'] for r in rows)} of {len(rows)} kills ok; table in {args.out}")
    return 0 if table["all_ok"] else 1


def _save(out: str, input_folder: Path, length: float, rc: int, reference: dict, rows: list[dict]) -> dict:
    table = {
        "input": str(input_folder),
        "reference": {"seconds": round(length, 1), "exit_code": rc, "srs": len(reference["srs"])},
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "all_ok": all(r["ok"] for r in rows),
    }
    Path(out).write_text(json.dumps(table, indent=2) + "\n")
    return table


if __name__ == "__main__":
    sys.exit(main())

"""A malformed study of 50 kinds (``corpus.py``) through the real app graph, once: a valid SR for every
good series (dciodvfy: 0 errors), a reason naming each bad file, skips naming the object's class, exit
code 1, no partial file, and the run report saying all of it."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pydicom
import pytest
from app_helpers import AppRun, run_app
from dicom_corpus import PATIENT, Kind, build_corpus
from helpers import require_tool

from monai_imc.atomic import TEMPORARY_NAME
from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import REPORT_NAME
from monai_imc.deploy.sr_step import sr_file_name


@pytest.fixture(scope="module")
def corpus_run(
    imc: IMCContext, tmp_path_factory: pytest.TempPathFactory
) -> tuple[AppRun, dict[str, Kind], list[logging.LogRecord]]:
    folder = tmp_path_factory.mktemp("corpus")
    kinds = build_corpus(folder)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(level=logging.WARNING), logging.getLogger()
    root.addHandler(handler)
    try:
        run = run_app(imc, folder, tmp_path_factory.mktemp("corpus_out"))
    finally:
        root.removeHandler(handler)
    return run, kinds, records


def _outcome(run: AppRun, name: str) -> tuple[str, str]:
    found = [(o.status, o.reason) for o in run.report.outcomes if o.name == name]
    assert len(found) == 1, f"{len(found)} outcomes for {name}"
    return found[0]


def outcome_table(run: AppRun, kinds: dict[str, Kind]) -> list[tuple[str, str, str, str]]:
    """``(kind, expected, got, reason)`` per kind."""
    rows = []
    for kind in kinds.values():
        name = kind.series_uid if kind.level == "series" else str(kind.files[0])
        found = [(o.status, o.reason) for o in run.report.outcomes if o.name == name]
        status, reason = found[0] if len(found) == 1 else (f"{len(found)} outcomes", "")
        rows.append((kind.name, kind.expect, status, reason))
    return rows


def test_every_kind_gets_its_outcome(
    corpus_run: tuple[AppRun, dict[str, Kind], list[logging.LogRecord]],
) -> None:
    run, kinds, _ = corpus_run
    assert len(kinds) >= 30
    rows = outcome_table(run, kinds)
    print("\n".join(f"{k:30s} {got:8s} {reason[:110]}" for k, _, got, reason in rows))
    wrong = [(k, want, got, reason) for k, want, got, reason in rows if want != got]
    assert not wrong, wrong
    for kind in kinds.values():
        _, reason = _outcome(run, kind.series_uid if kind.level == "series" else str(kind.files[0]))
        assert kind.reason in reason, (kind.name, reason)
        if kind.expect == "failed" and kind.level == "series":
            assert any(str(f) in reason for f in kind.files) or any(
                o.status == "failed" and o.name in map(str, kind.files) for o in run.report.outcomes
            ), (kind.name, reason)  # the bad file is named
        elif kind.expect == "failed":
            assert reason, kind.name
        for path, status, fragment in kind.extra:
            got, why = _outcome(run, str(path))
            assert got == status and fragment in why, (kind.name, path, got, why)


def test_srs_are_valid_and_nothing_is_partial(
    corpus_run: tuple[AppRun, dict[str, Kind], list[logging.LogRecord]],
) -> None:
    run, kinds, _ = corpus_run
    dciodvfy = require_tool("dciodvfy", "dicom3tools")
    good = {k.series_uid for k in kinds.values() if k.expect == "written"}
    names = sorted(p.name for p in run.output.iterdir())
    assert names == sorted([*(sr_file_name(u) for u in good), REPORT_NAME])
    assert not [n for n in names if TEMPORARY_NAME.match(n)]
    for path in run.report.written:
        out = subprocess.run([dciodvfy, str(path)], check=False, capture_output=True, text=True, timeout=60)
        errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
        assert not errors, (path.name, errors)
        assert (
            pydicom.dcmread(path).StudyInstanceUID
            == pydicom.dcmread(next(iter(kinds.values())).files[0], force=True).StudyInstanceUID
        )


def test_report_and_exit_code(corpus_run: tuple[AppRun, dict[str, Kind], list[logging.LogRecord]]) -> None:
    run, kinds, _ = corpus_run
    saved = json.loads((run.output / REPORT_NAME).read_text())
    assert run.report.exit_code == 1 and saved["exit_code"] == 1 and saved["state"] == "complete"
    assert saved["written"] == sum(k.expect == "written" for k in kinds.values())


def test_one_message_per_bad_file_and_no_patient(
    corpus_run: tuple[AppRun, dict[str, Kind], list[logging.LogRecord]],
) -> None:
    run, kinds, records = corpus_run
    messages = [r.getMessage() for r in records]
    for kind in kinds.values():
        if kind.level == "file":
            path = str(kind.files[0])
            assert sum(m.startswith(path) for m in messages) == 1, (
                kind.name,
                [m for m in messages if path in m],
            )
    text = "\n".join(messages) + (run.output / REPORT_NAME).read_text()
    for marker in PATIENT:
        assert marker not in text


def test_long_study_description_is_truncated_and_kept(
    corpus_run: tuple[AppRun, dict[str, Kind], list[logging.LogRecord]],
) -> None:
    run, kinds, _ = corpus_run
    sr = pydicom.dcmread(run.output / sr_file_name(kinds["study_description_70"].series_uid))
    assert len(sr.StudyDescription) == 64 and sr.StudyDescription.endswith("...")
    texts = [str(item.TextValue) for item in _walk(sr) if "TextValue" in item]
    assert "S" * 70 in texts


def _walk(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    out = []
    for item in ds.get("ContentSequence", []):
        out.append(item)
        out.extend(_walk(item))
    return out


def test_files_are_listed_where_they_are(
    corpus_run: tuple[AppRun, dict[str, Kind], list[logging.LogRecord]],
) -> None:
    _, kinds, _ = corpus_run
    for kind in kinds.values():
        for path in kind.files:
            assert Path(path).is_file()  # the input is left as it was

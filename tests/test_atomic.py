"""Atomic output: leftovers of a killed process are found and removed; this process's own are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_imc.atomic import TEMPORARY_NAME, atomic_output, remove_pending, sweep_temporary


def test_sweep_removes_leftovers_only(tmp_path: Path) -> None:
    leftover = tmp_path / ".IMC_SR_1.2.3.dcm.ab_cd123.tmp"
    leftover.write_bytes(b"half")
    keep = [tmp_path / "IMC_SR_1.2.3.dcm", tmp_path / ".hidden", tmp_path / "x.tmp"]
    for path in keep:
        path.write_bytes(b"x")
    with atomic_output(tmp_path / "report.json") as mine:
        mine.write_text("{}")
        assert TEMPORARY_NAME.match(mine.name)
        assert sweep_temporary(tmp_path) == [leftover]  # the file being written now is not a leftover
        assert mine.exists()
    assert not leftover.exists() and all(p.exists() for p in keep)
    assert (tmp_path / "report.json").read_text() == "{}"


def test_remove_pending_for_a_signal_handler(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "a.dcm") as tmp:
        tmp.write_bytes(b"half")
        assert remove_pending() == [tmp] and not tmp.exists()
        raise RuntimeError("stopped")
    assert list(tmp_path.iterdir()) == []


def test_a_stopping_process_starts_no_new_output_but_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from monai_imc import atomic

    monkeypatch.setattr(atomic, "_stopping", None)  # restored after the test: this process goes on
    errors: list[BaseException] = []

    def other_thread_writes() -> None:
        try:
            with atomic_output(tmp_path / "b.dcm") as tmp:
                tmp.write_bytes(b"x")
        except RuntimeError as err:
            errors.append(err)

    with pytest.raises(FileNotFoundError), atomic_output(tmp_path / "a.dcm") as in_flight:
        in_flight.write_bytes(b"half")
        assert remove_pending(stop=True) == [in_flight] and not in_flight.exists()
        in_flight.write_bytes(b"made again by the write in flight")
        assert remove_pending(stop=True) == [in_flight] and not in_flight.exists(), "a second call removes it"
        worker = threading.Thread(target=other_thread_writes)
        worker.start()
        worker.join()
        with atomic_output(tmp_path / "report.json") as mine:  # the stopping thread's own report
            mine.write_text("{}")
    # the write in flight cannot rename a file that is gone: it fails, and leaves nothing
    assert len(errors) == 1 and "the process is stopping" in str(errors[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]

"""The durable queue's states, the settings' validation and the deterministic SR UIDs (no network)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monai_imc.cli import main
from monai_imc.dicom.sr import AlgorithmInfo
from monai_imc.dicom.uids import sr_uids
from monai_imc.pacs.queue import WorkQueue
from monai_imc.pacs.settings import DicomwebSettings, ListenerSettings, ServeSettings


def test_a_study_goes_through_the_queue_once_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite"
    queue = WorkQueue(db)
    now = time.time()
    key = queue.record_instance("1.2.3", now - 20)
    queue.record_instance("1.2.3", now - 15)
    assert queue.promote_quiet(now - 12, quiet_seconds=5) == []  # the last instance is 3 s old
    assert queue.promote_quiet(now, quiet_seconds=5) == [key]
    job = queue.claim()
    assert job is not None and job.key == key and queue.claim() is None
    queue.close()  # killed while processing

    queue = WorkQueue(db)
    assert queue.recover() == 1
    job = queue.claim()
    assert job is not None and queue.processed(job, ["a.dcm"])
    assert queue.claim() is None  # processed: never processed again
    delivery = queue.claim_delivery()
    assert delivery is not None and delivery.srs == ("a.dcm",)
    queue.delivery_failed(delivery, "PACS down", delay=60)
    assert queue.claim_delivery() is None and queue.claim_delivery(time.time() + 61) is not None
    queue.delivered(delivery)
    (row,) = queue.rows()
    assert (row["state"], row["processed_times"], row["delivered_times"], row["attempts"]) == (
        "done",
        1,
        1,
        1,
    )
    assert queue.pending() == 0


def test_a_late_instance_reopens_a_study_and_a_stale_result_is_not_kept(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    queue.record_instance("1.2.3", time.time() - 10)
    queue.promote_quiet(time.time(), 5)
    job = queue.claim()
    assert job is not None
    queue.record_instance("1.2.3", time.time())  # arrives while the study is processed
    assert not queue.processed(job, ["a.dcm"])  # that result misses the new instance
    assert queue.rows()[0]["state"] == "receiving" and queue.rows()[0]["generation"] == 1
    queue.promote_quiet(time.time() + 10, 5)
    again = queue.claim()
    assert again is not None and again.generation == 1 and queue.processed(again, [])
    assert queue.rows()[0]["state"] == "done"


def test_processing_that_raises_is_retried_then_failed(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    queue.record_pulled("1.2.3", 4, time.time())
    for attempt in range(3):
        job = queue.claim(time.time() + 100 * attempt)
        assert job is not None
        state = queue.processing_failed(job, "boom", delay=50, max_attempts=3)
    assert state == "failed" and queue.pending() == 0 and queue.rows()[0]["last_error"] == "boom"


def test_sr_uids_are_deterministic_and_valid() -> None:
    algorithm = AlgorithmInfo("m", "sha256:ab")
    a = sr_uids("1.2.3", algorithm)
    assert a == sr_uids("1.2.3", algorithm) and a.series_instance_uid != a.sop_instance_uid
    assert a != sr_uids("1.2.4", algorithm) and a != sr_uids("1.2.3", AlgorithmInfo("m", "sha256:cd"))
    assert all(len(u) <= 64 and set(u) <= set("0123456789.") for u in a)
    with pytest.raises(ValueError, match="Series Instance UID"):
        sr_uids("", algorithm)


def _listener(**kw: object) -> ListenerSettings:
    return ListenerSettings(**{"allowed_calling": ("ROUTER",), **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ServeSettings(Path("o")), "needs a source"),
        (ServeSettings(Path("o"), listener=_listener(allowed_calling=())), "calling AE titles"),
        (ServeSettings(Path("o"), listener=_listener(ae_title="A" * 17)), "not an AE title"),
        (ServeSettings(Path("o"), listener=_listener(port=70000)), "not in 1..65535"),
        (ServeSettings(Path("o"), listener=_listener(quiet_seconds=0)), "quiet time"),
        (ServeSettings(Path("o"), listener=_listener(), retry_seconds=0), "retry delays"),
        (
            ServeSettings(Path("o"), listener=_listener(), destination=DicomwebSettings("http://u:pw@h/dw")),
            "credentials in the destination URL",
        ),
        (
            ServeSettings(
                Path("o"),
                listener=_listener(),
                destination=DicomwebSettings("http://pacs.example/dw", "u", password_env="X_UNSET_VAR"),
            ),
            "over https only",
        ),
        (
            ServeSettings(
                Path("o"),
                listener=_listener(),
                destination=DicomwebSettings("https://pacs.example/dw", "u", password_env="X_UNSET_VAR"),
            ),
            "X_UNSET_VAR is not set",
        ),
    ],
)
def test_bad_settings_are_refused_before_anything_loads(settings: ServeSettings, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        settings.validate()
    assert "pw" not in str(info.value)


def test_a_password_file_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    os.chmod(secret, 0o644)
    web = DicomwebSettings("https://pacs.example/dw", "imc", password_file=secret)
    with pytest.raises(ValueError, match="readable by others") as info:
        web.validate("destination")
    assert "s3cret" not in str(info.value)
    os.chmod(secret, 0o600)
    web.validate("destination")
    assert web.session().auth == ("imc", "s3cret-value")


def test_the_command_line_reports_bad_settings_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "serve",
            "-o",
            str(tmp_path),
            "--port",
            "11112",
            "--allow-calling-ae",
            "R",
            "--stow",
            "http://imc:hunter2@127.0.0.1:1/dicom-web",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "credentials in the destination URL" in err and "hunter2" not in err
    code = main(["serve", "-o", str(tmp_path), "--port", "11112"])
    assert code == 2 and "--allow-calling-ae" in capsys.readouterr().err
    assert not (tmp_path / "imc_queue.sqlite").exists()  # nothing was started

"""``monai-imc serve`` against a real Orthanc (the PACS) on loopback: studies in by C-STORE or pulled over
DICOMweb, SRs back into the same study by STOW-RS; a PACS that is down is retried until it is back.

The service runs in-process (the test's main thread); a thread sends the study like a router would
(pynetdicom). The first two tests run the real app and model; the PACS-down test uses the stand-in for the
model step (tests/pacs_helpers.StandInProcessor), as it tests delivery only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pydicom
import pytest
from orthanc_helpers import Orthanc, free_port
from pacs_helpers import PASSWORD, USER, StandInProcessor, make_study, referenced_series, send, srs_in_pacs

from monai_imc.deploy.context import IMCContext
from monai_imc.pacs.service import AppProcessor, Service
from monai_imc.pacs.settings import DicomwebSettings, ListenerSettings, PullSettings, ServeSettings


def _store_sources(server: DicomwebSettings, files: list[Path]) -> None:
    """Put the source study into the PACS, as a modality would have."""
    from dicomweb_client import DICOMwebClient

    DICOMwebClient(server.url, session=server.session()).store_instances([pydicom.dcmread(f) for f in files])


def _sender(files: list[Path], port: int, sent: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: sent.append(send(files, port, deadline=time.monotonic() + 60)))
    thread.start()
    return thread


def _one_sr_per_series(url: str, study: str, series: list[str], session: object = None) -> list[str]:
    srs = srs_in_pacs(url, study, session)
    assert sorted(tuple(referenced_series(sr)) for sr in srs) == sorted((s,) for s in series)
    assert {str(sr.StudyInstanceUID) for sr in srs} == {study}
    return sorted(str(sr.SOPInstanceUID) for sr in srs)


def test_a_study_sent_by_cstore_gets_its_srs_in_the_same_study(
    secured_orthanc: Orthanc, imc: IMCContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "pacs.pw"
    secret.write_text(PASSWORD)
    os.chmod(secret, 0o600)
    web = DicomwebSettings(secured_orthanc.url, USER, password_file=secret)
    study, series, files = make_study(tmp_path / "src", 0)
    _store_sources(web, files)
    port = free_port()
    settings = ServeSettings(
        tmp_path / "out",
        listener=ListenerSettings(("ROUTER",), port=port, quiet_seconds=1.0),
        destination=web,
        exit_when_idle=2.0,
    )
    caplog.set_level(logging.DEBUG)
    sent: list[int] = []
    thread = _sender(files, port, sent)
    summary = Service(settings, AppProcessor(imc)).run()
    thread.join()
    assert sent == [len(files)]
    assert (summary.processed, summary.delivered, summary.delivery_failures) == (1, 1, 0), summary
    first = _one_sr_per_series(web.url, study, series, web.session())
    out = tmp_path / "out"
    assert PASSWORD not in caplog.text
    for path in [*out.rglob("*.json"), out / "imc_queue.sqlite"]:
        assert PASSWORD.encode() not in path.read_bytes(), path

    # the router sends the study again: processed again, and the same SRs replace the first ones
    thread = _sender(files, port, sent)
    summary = Service(settings, AppProcessor(imc)).run()
    thread.join()
    assert summary.delivered == 1 and _one_sr_per_series(web.url, study, series, web.session()) == first


def test_pull_mode_finds_retrieves_and_answers_a_study(
    orthanc: Orthanc, imc: IMCContext, tmp_path: Path
) -> None:
    web = DicomwebSettings(orthanc.url)
    study, series, files = make_study(tmp_path / "src", 1)
    _store_sources(web, files)
    settings = ServeSettings(
        tmp_path / "out", pull=PullSettings(web, poll_seconds=0.5), destination=web, exit_when_idle=1.5
    )
    summary = Service(settings, AppProcessor(imc)).run()
    assert (summary.processed, summary.delivered) == (1, 1), summary
    _one_sr_per_series(web.url, study, series)
    # polling again: the study (now with our SRs in it) is not pulled a second time
    summary = Service(settings, AppProcessor(imc)).run()
    assert summary.processed == 0
    from monai_imc.pacs.queue import WorkQueue

    (row,) = WorkQueue(tmp_path / "out" / "imc_queue.sqlite").rows()
    assert (row["state"], row["processed_times"], row["source"]) == ("done", 1, "dicomweb")


def test_a_pacs_that_is_down_is_retried_until_it_is_back(
    orthanc: Orthanc, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    orthanc.stop()
    web = DicomwebSettings(orthanc.url)
    study, series, files = make_study(tmp_path / "src", 2)
    port = free_port()
    settings = ServeSettings(
        tmp_path / "out",
        listener=ListenerSettings(("ROUTER",), port=port, quiet_seconds=0.5),
        destination=web,
        retry_seconds=0.3,
        retry_max_seconds=1.0,
        exit_when_idle=1.5,
    )
    service = Service(settings, StandInProcessor(0.0))
    sent: list[int] = []

    def router_then_pacs_back() -> None:
        sent.append(send(files, port, deadline=time.monotonic() + 60))
        deadline = time.monotonic() + 60
        while service.summary.delivery_failures < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        orthanc.start()

    thread = threading.Thread(target=router_then_pacs_back)
    thread.start()
    caplog.set_level(logging.WARNING)
    summary = service.run()
    thread.join()
    assert sent == [len(files)]
    assert summary.delivery_failures >= 3 and summary.delivered == 1, summary
    assert f"delivery of study {study} to {web.url} failed" in summary.errors[0]
    assert "ConnectionError" in summary.errors[0] and "retrying in" in caplog.text
    _one_sr_per_series(web.url, study, series)

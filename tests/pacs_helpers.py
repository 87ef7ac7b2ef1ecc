"""Helpers of the PACS tests (tests/pacs): a C-STORE sender standing in for a router, small studies of real
DICOM, reading back what a PACS holds, and a stand-in for the model step.

The sender is pynetdicom (what a router does: send, and resend what was not acknowledged). The stand-in
processor (:class:`StandInProcessor`) replaces only the model step of the app: it writes a real IMC SR
(:func:`monai_imc.dicom.sr_file.write_imc_sr`, deterministic UIDs) per image series, with no model, so that a
service restarted many times does not spend ~20 s loading the model at each start; the tests say where they
use it, and one end-to-end test runs the real app and model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from monai_imc.dicom.sr import AlgorithmInfo, ImageAssessment
from monai_imc.dicom.sr_file import write_imc_sr
from monai_imc.pacs.service import ProcessResult

logger = logging.getLogger(__name__)

USER, PASSWORD = "imc", "pacs-test-secret-7f3a"
"""The secured Orthanc's DICOMweb user (a test password, in no real system)."""

STAND_IN = AlgorithmInfo(model_id="stand-in", bank_hash="sha256:stand-in")


def make_study(
    folder: Path, index: int, series: Sequence[str] = ("CT_small.dcm", "MR_small.dcm"), per_series: int = 2
) -> tuple[str, list[str], list[Path]]:
    """A study of real pydicom-data images with new UIDs: ``per_series`` instances of each file.

    Returns:
        The Study Instance UID, the Series Instance UIDs and the files.
    """
    study = generate_uid(entropy_srcs=["pacs-test", str(index)])
    series_uids, files = [], []
    for s, name in enumerate(series):
        series_uid = generate_uid(entropy_srcs=["pacs-test", str(index), str(s)])
        series_uids.append(series_uid)
        for i in range(per_series):
            ds = pydicom.dcmread(get_testdata_file(name))
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
            ds.SOPInstanceUID = generate_uid(entropy_srcs=["pacs-test", str(index), str(s), str(i)])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = i + 1
            ds.PatientID, ds.PatientName = f"IMC-PACS-{index}", "Pacs^Test"  # one patient per study
            path = folder / f"study{index}" / f"s{s}_{i}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return study, series_uids, files


def echo(port: int, called: str = "MONAI_IMC", calling: str = "ROUTER") -> bool:
    """Whether a C-ECHO to 127.0.0.1:``port`` succeeds."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 2
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


def wait_for_listener(port: int, timeout: float, alive: object = None) -> None:
    """Wait until the listener answers C-ECHO (``alive()``, when given, must stay true)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if echo(port):
            return
        if callable(alive) and not alive():
            raise RuntimeError("the service exited before listening")
        time.sleep(0.3)
    raise TimeoutError(f"no listener on port {port} after {timeout} s")


def send(
    files: Sequence[Path],
    port: int,
    called: str = "MONAI_IMC",
    calling: str = "ROUTER",
    deadline: float | None = None,
) -> int:
    """C-STORE the files like a router: each file until it is acknowledged (status 0x0000), reassociating
    after a failure, until ``deadline`` (monotonic). Returns how many were acknowledged."""
    from pynetdicom import AE

    datasets = [pydicom.dcmread(p) for p in files]
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = ae.dimse_timeout = 5
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class)
    done = 0
    assoc = None
    while done < len(datasets):
        if deadline is not None and time.monotonic() > deadline:
            break
        if assoc is None or not assoc.is_established:
            assoc = ae.associate("127.0.0.1", port, ae_title=called)
            if not assoc.is_established:
                assoc = None
                time.sleep(0.2)
                continue
        status = assoc.send_c_store(datasets[done])
        if status and status.get("Status") == 0x0000:
            done += 1
        else:
            assoc.abort()
            assoc = None
            time.sleep(0.2)
    if assoc is not None and assoc.is_established:
        assoc.release()
    return done


def srs_in_pacs(url: str, study_uid: str, session: object = None) -> list[pydicom.Dataset]:
    """The SR instances of a study on a DICOMweb server (QIDO-RS, then WADO-RS each)."""
    from dicomweb_client import DICOMwebClient

    client = DICOMwebClient(url, session=session)
    found = client.search_for_instances(study_instance_uid=study_uid, search_filters={"Modality": "SR"})
    return [
        client.retrieve_instance(study_uid, item["0020000E"]["Value"][0], item["00080018"]["Value"][0])
        for item in found
    ]


def referenced_series(sr: pydicom.Dataset) -> set[str]:
    """The source Series Instance UIDs an SR references (its evidence)."""
    return {
        str(series.SeriesInstanceUID)
        for study in sr.get("CurrentRequestedProcedureEvidenceSequence", [])
        for series in study.get("ReferencedSeriesSequence", [])
    }


class StandInProcessor:
    """The app with its model step replaced: one real IMC SR per image series, "clean", no model.

    Args:
        seconds_per_series: time spent per series, like the model's (so kills land mid-processing).
    """

    def __init__(self, seconds_per_series: float = 0.2) -> None:
        self.seconds_per_series = seconds_per_series

    def process(self, input_folder: Path, output_folder: Path) -> ProcessResult:
        """Write one SR per image series of the folder."""
        series: dict[str, pydicom.Dataset] = {}
        for path in sorted(input_folder.glob("*.dcm")):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if "Rows" in ds:
                series.setdefault(str(ds.SeriesInstanceUID), ds)
        written = []
        for uid, ds in series.items():
            time.sleep(self.seconds_per_series)
            path = output_folder / f"IMC_SR_{uid}.dcm"  # the app's name; deploy.work would import torch
            write_imc_sr(path, [ImageAssessment(ds, None, None, 1.0)], [], STAND_IN)
            written.append(path)
        return ProcessResult(tuple(written))

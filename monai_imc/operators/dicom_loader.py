"""IMCDicomLoaderOperator: the SDK's DICOM loader, reading with :mod:`monai_imc.dicom.read`.

The SDK's ``DICOMDataLoaderOperator`` stops the whole run at a file that pydicom cannot parse beyond its
preamble, keeps the first of two copies of one instance in directory order (a truncated copy then fails
its series or not depending on that order), and logs each file it drops without saying which, so the
app had to read them once more. This subclass keeps the SDK's output (``List[DICOMStudy]``) and its ports,
and reads the files with :func:`~monai_imc.dicom.read.read_dicom_files`: every file gets exactly one
outcome in the run report and one log line, and of several copies of one instance the complete one is
used, whatever the order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from monai.deploy.core.domain.dicom_series import DICOMSeries
from monai.deploy.core.domain.dicom_study import DICOMStudy
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator

from monai_imc.deploy.report import Outcome, RunReport
from monai_imc.dicom.read import read_dicom_files
from monai_imc.timing import timed

__all__ = ["IMCDicomLoaderOperator"]


class IMCDicomLoaderOperator(DICOMDataLoaderOperator):
    """Load a DICOM folder into the SDK's studies; bad and left-out files go to the run report.

    Named output:
        dicom_study_list: ``List[DICOMStudy]`` (as the SDK's loader).

    Args:
        fragment: the application.
        report: the run report, which gets the outcome of every file not put into a series.
        ignore_names: file names that belong to the input and need no outcome (the JSON sidecar).
        on_start: called when the loader starts reading (the graph is running).
        **kwargs: passed to ``DICOMDataLoaderOperator`` (``input_folder``, ``must_load``, ``name``).
    """

    def __init__(
        self,
        fragment: Any,
        *args: Any,
        report: RunReport,
        ignore_names: tuple[str, ...] = (),
        on_start: Callable[[], None] | None = None,
        **kwargs: Any,
    ):
        self._report = report
        self._ignore_names = tuple(ignore_names)
        self._on_start = on_start
        super().__init__(fragment, *args, **kwargs)

    def _load_data(self, files: list[str]) -> list[DICOMStudy]:
        """The studies of ``files``; one outcome per file that is not in a series."""
        if self._on_start is not None:
            self._on_start()
        with self._report.timer.active(), timed("read"):
            folder = read_dicom_files([Path(f) for f in files], ignore_names=self._ignore_names)
        for path, reason in folder.errors:
            self._report.add(Outcome("failed", "file", str(path), reason))
        for path, reason in folder.skipped_files:
            self._report.add(Outcome("skipped", "file", str(path), reason))
        studies = []
        for study_uid, series_map in sorted(folder.studies.items()):
            study = DICOMStudy(study_uid)
            for series_uid, datasets in sorted(series_map.items()):
                series = DICOMSeries(series_uid)
                if not study.get_all_series():
                    self._describe(self.populate_study_attributes, study, datasets[0])
                self._describe(self.populate_series_attributes, series, datasets[0])
                for ds in datasets:
                    series.add_sop_instance(ds)
                study.add_series(series)
            studies.append(study)
        return studies

    def _describe(self, populate: Any, target: Any, ds: Any) -> None:
        """Copy the SDK's descriptive attributes; a malformed value leaves them out (the datasets are what
        the app reads), it does not stop the run as in the SDK's loader."""
        try:
            populate(target, ds)
        except Exception as exc:  # noqa: BLE001  (the SDK converts values without checking them)
            self._logger.debug("%s: descriptive attributes left out: %s", ds.get("SOPInstanceUID", "?"), exc)

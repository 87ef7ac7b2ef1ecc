"""SeriesToViewsOperator: the selected series of each study -> key 2D views, with modality windowing.

Also accounts for the input files the SDK's loader left out (truncated, not DICOM, no UIDs), so every
file of the input has an outcome in the run report.
"""

from __future__ import annotations

from typing import Any

from monai_imc.deploy.audit import audit_input
from monai_imc.deploy.process import stage_views
from monai_imc.deploy.report import Outcome
from monai_imc.deploy.work import SeriesWork, series_work
from monai_imc.operators.stage import StageOperator

__all__ = ["SeriesToViewsOperator"]


class SeriesToViewsOperator(StageOperator):
    """Key 2D views per series: single-frame CR/DX/US instances, the middle slice(s) of CT/MR volumes,
    middle frame(s) of multi-frame images, windowed for the modality.

    Named input:
        study_selected_series_list: the SDK selector's ``List[StudySelectedSeries]``.

    Named output:
        series_views: ``list[SeriesWork]`` with views (non-image series skipped, broken ones failed).

    Args:
        fragment: the application.
        imc: the shared IMC context (settings: ``n_views``, ``ct_preset``, the sidecar's name).
        report: the run report, which gets the outcome of every file the loader left out.
        input_folder: the input folder, to account for those files (``None``: no audit).
    """

    INPUT = "study_selected_series_list"
    OUTPUT = "series_views"

    def process(self, items: list[Any]) -> Any:
        """Views of every selected series (``items``: the selector's StudySelectedSeries); a list of SeriesWork."""
        selections = items
        works: list[SeriesWork] = []
        seen: set[str] = set()
        for selection in selections:
            study_uid = str(selection.study.StudyInstanceUID)
            for selected in selection.selected_series:
                series = selected.series
                uid = str(series.SeriesInstanceUID)
                if uid in seen:
                    continue
                seen.add(uid)
                datasets = [sop.get_native_sop_instance() for sop in series.get_sop_instances()]
                works.append(series_work(study_uid, uid, datasets))
        if self._input_folder is not None:
            loaded = [
                str(ds.filename)
                for w in works
                for ds in w.datasets
                if isinstance(getattr(ds, "filename", None), str)
            ]
            assert self._report is not None, "SeriesToViewsOperator needs the run report to audit the input"
            for finding in audit_input(self._input_folder, loaded, [self._imc.settings.sidecar_name]):
                self._report.add(Outcome(finding.status, "file", str(finding.path), finding.reason))
        self._logger.info("%d series selected", len(works))
        return stage_views(works, self._imc)

"""SeriesToViewsOperator: the selected series of each study -> key 2D views, with modality windowing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from monai_imc.deploy.process import stage_views
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
        imc: the shared IMC context (settings: ``n_views``, ``ct_preset``, ``max_pixels``).
        keep_current_in: the output folder when series whose SR is there and current are to be kept
            (``--skip-existing``); ``None``: process every series.
        **kwargs: passed to :class:`StageOperator`.
    """

    INPUT = "study_selected_series_list"
    OUTPUT = "series_views"

    def __init__(
        self, *args: Any, keep_current_in: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> None:
        self._keep_current_in = Path(keep_current_in) if keep_current_in is not None else None
        super().__init__(*args, **kwargs)

    def process(self, items: list[Any]) -> Any:
        """Views of every selected series (``items``: the selector's StudySelectedSeries); a list of SeriesWork."""
        works: list[SeriesWork] = []
        seen: set[str] = set()
        for selection in items:
            study_uid = str(selection.study.StudyInstanceUID)
            for selected in selection.selected_series:
                series = selected.series
                uid = str(series.SeriesInstanceUID)
                if uid in seen:
                    continue
                seen.add(uid)
                datasets = [sop.get_native_sop_instance() for sop in series.get_sop_instances()]
                works.append(series_work(study_uid, uid, datasets))
        self._logger.info("%d series selected", len(works))
        return stage_views(works, self._imc, keep_current_in=self._keep_current_in)

"""SMSReportRefinerOperator: the clinical texts of each series, refined by the SMS agents."""

from __future__ import annotations

from typing import Any

from monai_imc.deploy.process import stage_refine
from monai_imc.operators.stage import StageOperator

__all__ = ["SMSReportRefinerOperator"]


class SMSReportRefinerOperator(StageOperator):
    """Collect each series' texts (the bundle's standing questions, the DICOM text fields, the study's JSON
    sidecar) and refine each with SMS; the original is kept beside the refined text.

    Named input:
        calibrated: ``list[SeriesWork]``.

    Named output:
        refined: ``list[SeriesWork]`` with the refined texts.

    Args:
        fragment: the application.
        imc: the shared IMC context (refiner, standing questions, text fields, sidecar name).
        report: the run report (an unreadable sidecar is a failure of the run).
        input_folder: where to look for sidecars (``None``: none).
    """

    INPUT = "calibrated"
    OUTPUT = "refined"

    def process(self, items: list[Any]) -> Any:
        """Refine the texts of every series (each distinct text once)."""
        assert self._report is not None, "SMSReportRefinerOperator needs the run report"
        return stage_refine(items, self._imc, self._input_folder, self._report)

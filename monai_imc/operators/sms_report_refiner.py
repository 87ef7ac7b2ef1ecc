"""SMSReportRefinerOperator: the clinical texts of each series, refined by the SMS agents."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_refine
from monai_imc.deploy.report import RunReport

__all__ = ["SMSReportRefinerOperator"]


class SMSReportRefinerOperator(Operator):
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

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        imc: IMCContext,
        report: RunReport,
        input_folder: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._imc = imc
        self._report = report
        self._input_folder = Path(input_folder) if input_folder is not None else None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        spec.input(self.INPUT)
        spec.output(self.OUTPUT)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Refine the texts of every series (each distinct text once)."""
        works = op_input.receive(self.INPUT) or []
        op_output.emit(stage_refine(works, self._imc, self._input_folder, self._report), self.OUTPUT)

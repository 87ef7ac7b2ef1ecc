"""IMCStructuredReportWriterOperator: one Comprehensive 3D SR (TID 1500) per assessed series, atomically."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from monai.deploy.core import ConditionType, Fragment, Operator, OperatorSpec

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_write
from monai_imc.deploy.report import RunReport

__all__ = ["IMCStructuredReportWriterOperator"]


class IMCStructuredReportWriterOperator(Operator):
    """Write each assessed series' IMC SR into the output folder (temporary file, then rename), record every
    outcome in the run report and save it there (``imc_run_report.json``).

    Named input:
        reports: ``list[SeriesWork]`` with views, perceptions, calibrations, refined texts and answers.

    Named output:
        sr_files: ``list[Path]`` of the SRs written (no receiver needed; e.g. for a STOW-RS operator).

    Args:
        fragment: the application.
        imc: the shared IMC context (the algorithm identification recorded in each SR).
        report: the run report.
        output_folder: where the SRs go.
    """

    INPUT = "reports"
    OUTPUT = "sr_files"

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        imc: IMCContext,
        report: RunReport,
        output_folder: str | os.PathLike[str],
        **kwargs: Any,
    ) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._imc = imc
        self._report = report
        self._output_folder = Path(output_folder)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        spec.input(self.INPUT)
        spec.output(self.OUTPUT).condition(ConditionType.NONE)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Write the SRs and the run report."""
        works = op_input.receive(self.INPUT) or []
        with self._report.timer.active():
            done = stage_write(works, self._imc, self._output_folder, self._report)
        op_output.emit([w.sr_path for w in done if w.sr_path is not None], self.OUTPUT)

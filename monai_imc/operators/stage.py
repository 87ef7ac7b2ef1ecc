"""StageOperator: the skeleton every IMC operator shares (one input port, one output port, one stage)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import RunReport

__all__ = ["StageOperator"]


class StageOperator(Operator):
    """Receive a list on :attr:`INPUT`, apply :meth:`process` (one stage of ``monai_imc.deploy``), emit on :attr:`OUTPUT`.

    Args:
        fragment: the application.
        imc: the shared IMC context (model, bank, pipeline, refiner, settings), built once per app.
        report: the run report, for stages that account for files or failures, and for the per-stage
            timings (``None``: not needed, not timed).
        input_folder: the input folder, for stages that read beside the DICOM (``None``: none).
    """

    INPUT: str = ""
    OUTPUT: str = ""

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        imc: IMCContext,
        report: RunReport | None = None,
        input_folder: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._logger = logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")
        self._imc = imc
        self._report = report
        self._input_folder = Path(input_folder) if input_folder is not None else None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        spec.input(self.INPUT)
        spec.output(self.OUTPUT)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Apply the stage to what arrived (an empty list when nothing did) and pass the result on."""
        items = op_input.receive(self.INPUT) or []
        if self._report is None:
            op_output.emit(self.process(items), self.OUTPUT)
            return
        with self._report.timer.active():  # the stage's timings go to the run report
            result = self.process(items)
        op_output.emit(result, self.OUTPUT)

    def process(self, items: list[Any]) -> Any:
        """The stage itself; subclasses implement it."""
        raise NotImplementedError

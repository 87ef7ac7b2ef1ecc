"""VLMReportOperator: the model's answers from the calibrated features and the refined questions."""

from __future__ import annotations

import logging
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_answer

__all__ = ["VLMReportOperator"]


class VLMReportOperator(Operator):
    """Answer every refined question about every view, from its (calibrated) vision features, with no
    second vision pass.

    Named input:
        refined: ``list[SeriesWork]`` with calibrated features and refined texts.

    Named output:
        reports: ``list[SeriesWork]`` with the answers.

    Args:
        fragment: the application.
        imc: the shared IMC context (model, ``max_new_tokens``).
    """

    INPUT = "refined"
    OUTPUT = "reports"

    def __init__(self, fragment: Fragment, *args: Any, imc: IMCContext, **kwargs: Any) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._imc = imc
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        spec.input(self.INPUT)
        spec.output(self.OUTPUT)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Answer the questions of every series."""
        op_output.emit(stage_answer(op_input.receive(self.INPUT) or [], self._imc), self.OUTPUT)

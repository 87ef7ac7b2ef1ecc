"""PDCCalibratorOperator: move the vision features of flagged views back toward the clean prototypes."""

from __future__ import annotations

import logging
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_calibrate

__all__ = ["PDCCalibratorOperator"]


class PDCCalibratorOperator(Operator):
    """Prototype-guided calibration (PDC) of the features of views the perceiver flagged; clean views pass
    unchanged (the gate).

    Named input:
        perceived: ``list[SeriesWork]`` with features and perceptions.

    Named output:
        calibrated: ``list[SeriesWork]`` with (possibly) calibrated features and a Calibration per view.

    Args:
        fragment: the application.
        imc: the shared IMC context (its pipeline's calibrator and PDC switch).
    """

    INPUT = "perceived"
    OUTPUT = "calibrated"

    def __init__(self, fragment: Fragment, *args: Any, imc: IMCContext, **kwargs: Any) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._imc = imc
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        spec.input(self.INPUT)
        spec.output(self.OUTPUT)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Calibrate every flagged view."""
        op_output.emit(stage_calibrate(op_input.receive(self.INPUT) or [], self._imc), self.OUTPUT)

"""PDCCalibratorOperator: move the vision features of flagged views back toward the clean prototypes."""

from __future__ import annotations

from typing import Any

from monai_imc.deploy.process import stage_calibrate
from monai_imc.operators.stage import StageOperator

__all__ = ["PDCCalibratorOperator"]


class PDCCalibratorOperator(StageOperator):
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

    def process(self, items: list[Any]) -> Any:
        """Calibrate every flagged view."""
        return stage_calibrate(items, self._imc)

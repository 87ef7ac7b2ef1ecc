"""PDCCalibratorOperator: move the vision features of flagged views back toward the clean prototypes."""

from __future__ import annotations

from typing import Any

from monai_imc.deploy.process import stage_calibrate
from monai_imc.operators.stage import StageOperator

__all__ = ["PDCCalibratorOperator"]


class PDCCalibratorOperator(StageOperator):
    """Prototype-guided calibration (PDC) of the features of views the perceiver flagged; clean views pass
    unchanged (the gate). Where the bundle config's ``restore`` section is enabled, flagged views are first
    restored by their perceived artifact and encoded again (:func:`monai_imc.deploy.work.calibrate`).

    Named input:
        perceived: ``list[SeriesWork]`` with features and perceptions.

    Named output:
        calibrated: ``list[SeriesWork]`` with (possibly) restored and calibrated features, a Calibration per
            view and, with restoration on, a Restoration per view.

    Args:
        fragment: the application.
        imc: the shared IMC context (its pipeline's calibrator and PDC switch).
    """

    INPUT = "perceived"
    OUTPUT = "calibrated"

    def process(self, items: list[Any]) -> Any:
        """Calibrate every flagged view."""
        return stage_calibrate(items, self._imc)

"""ArtifactPerceiverOperator: one vision pass per view, and the perceiver's verdict on it."""

from __future__ import annotations

from typing import Any

from monai_imc.deploy.process import stage_perceive
from monai_imc.operators.stage import StageOperator

__all__ = ["ArtifactPerceiverOperator"]


class ArtifactPerceiverOperator(StageOperator):
    """Encode each view once with the model's vision tower and perceive its artifact (type, severity,
    probability) against the prototype bank.

    Named input:
        series_views: ``list[SeriesWork]`` with views.

    Named output:
        perceived: ``list[SeriesWork]`` with vision features and a Perception per view.

    Args:
        fragment: the application.
        imc: the shared IMC context (model and bank).
    """

    INPUT = "series_views"
    OUTPUT = "perceived"

    def process(self, items: list[Any]) -> Any:
        """Perceive every view."""
        return stage_perceive(items, self._imc)

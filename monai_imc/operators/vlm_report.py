"""VLMReportOperator: the model's answers from the calibrated features and the refined questions."""

from __future__ import annotations

from typing import Any

from monai_imc.deploy.process import stage_answer
from monai_imc.operators.stage import StageOperator

__all__ = ["VLMReportOperator"]


class VLMReportOperator(StageOperator):
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

    def process(self, items: list[Any]) -> Any:
        """Answer the questions of every series."""
        return stage_answer(items, self._imc)

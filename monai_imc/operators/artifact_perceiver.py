"""ArtifactPerceiverOperator: one vision pass per view, and the perceiver's verdict on it."""

from __future__ import annotations

import logging
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import stage_perceive

__all__ = ["ArtifactPerceiverOperator"]


class ArtifactPerceiverOperator(Operator):
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

    def __init__(self, fragment: Fragment, *args: Any, imc: IMCContext, **kwargs: Any) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._imc = imc
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        spec.input(self.INPUT)
        spec.output(self.OUTPUT)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Perceive every view."""
        op_output.emit(stage_perceive(op_input.receive(self.INPUT) or [], self._imc), self.OUTPUT)

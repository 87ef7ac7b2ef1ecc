"""STOWRSOperator: send the written SRs back to the PACS with DICOMweb STOW-RS (optional)."""

from __future__ import annotations

import logging
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from monai_imc.deploy.process import stage_stow
from monai_imc.deploy.report import RunReport

__all__ = ["STOWRSOperator"]


class STOWRSOperator(Operator):
    """POST the SRs to ``{url}/studies``; each one the server does not store is a failure in the run report
    (saved again).

    Named input:
        sr_files: ``list[Path]`` from the SR writer.

    Args:
        fragment: the application.
        report: the run report.
        url: the DICOMweb root, e.g. ``http://pacs:8042/dicom-web`` (no credentials in it).
    """

    INPUT = "sr_files"

    def __init__(self, fragment: Fragment, *args: Any, report: RunReport, url: str, **kwargs: Any) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._report = report
        self._url = url
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the port."""
        spec.input(self.INPUT)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Send the SRs."""
        stage_stow(op_input.receive(self.INPUT) or [], self._url, self._report)

"""Helpers of the app tests (tests/app): one in-process run of the real app graph."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import RunReport


@dataclass(frozen=True)
class AppRun:
    """One run of the app graph: its input, output and report."""

    input: Path
    output: Path
    report: RunReport


def run_app(imc: IMCContext, input_folder: Path, output_folder: Path) -> AppRun:
    """Run the IMC app graph (Holoscan, the SDK's loader and selector, our operators), sharing ``imc``."""
    from monai_imc.operators.application import IMCApplication

    app = IMCApplication(
        [sys.executable, "tests"], imc=imc, input_folder=input_folder, output_folder=output_folder
    )
    app.run()
    assert app.report is not None and app.exit_code == app.report.exit_code
    return AppRun(input_folder, output_folder, app.report)

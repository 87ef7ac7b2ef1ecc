"""The bundle's ``run`` entry: process a folder as ``monai-imc run`` does, for MONAI's own bundle tools.

``configs/inference.json`` names :func:`run_folder` as ``run``, so::

    python -m monai.bundle run --bundle_root bundles/monai_imc_vqa \\
        --config_file bundles/monai_imc_vqa/configs/inference.json --input_dir STUDY --output_dir OUT

writes the SRs and ``imc_run_report.json`` the app writes (the same chain, without Holoscan).
"""

from __future__ import annotations

import os

from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.process import process_folder

__all__ = ["run_folder"]


def run_folder(
    input_dir: str | os.PathLike[str] | None, output_dir: str | os.PathLike[str] | None, context: IMCContext
) -> int:
    """Process a folder of DICOM studies as ``monai-imc run`` does (without Holoscan): the ``run`` id of
    ``inference.json``, so ``python -m monai.bundle run --bundle_root B --config_file
    B/configs/inference.json --input_dir IN --output_dir OUT`` works.

    Returns:
        The run report's exit code: 0 when SRs were written and nothing failed, else 1 (as ``monai-imc run``).

    Raises:
        ValueError: no input or output folder was given.
        NotADirectoryError: the input folder does not exist.
    """
    if not input_dir or not output_dir:
        raise ValueError("set the folders: --input_dir IN --output_dir OUT")
    report = process_folder(input_dir, output_dir, context, progress=False)
    print(f"monai-imc: {len(report.written)} SRs written to {output_dir}, {len(report.of('failed'))} failed")
    return report.exit_code

"""The IMC MONAI Deploy application, as packaged: DICOM study in, one IMC SR per image series out.

Run it like the SDK's example apps::

    python app_package -i INPUT_DICOM_FOLDER -o OUTPUT_FOLDER -m BUNDLE_OR_MODELS_FOLDER
    HOLOSCAN_INPUT_PATH=... HOLOSCAN_OUTPUT_PATH=... HOLOSCAN_MODEL_PATH=... python app_package

The graph itself is :class:`monai_imc.operators.application.IMCApplication` (so that ``monai-imc run``
runs the very same graph); this file adds the ``imc`` section of ``app.yaml``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from monai_imc.operators.application import IMCApplication

__all__ = ["CONFIG", "IMCApp"]

CONFIG = Path(__file__).resolve().parent / "app.yaml"
"""The app's config: MAP resources and the ``imc`` section."""


class IMCApp(IMCApplication):
    """IMC: perceive and calibrate image artifacts, refine clinical text with SMS, answer, write DICOM SR.

    Args:
        *args: passed to :class:`IMCApplication` (``argv``).
        **kwargs: passed to :class:`IMCApplication`; ``device`` and ``stow_url`` default to ``app.yaml``'s
            ``imc`` section.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        section = read_imc_section(CONFIG)
        kwargs.setdefault("device", section.get("device"))
        kwargs.setdefault("stow_url", section.get("stow_url"))
        super().__init__(*args, **kwargs)


def read_imc_section(path: Path) -> dict[str, Any]:
    """The ``imc`` section of an app.yaml (empty when absent)."""
    import yaml

    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text.split("---", 1)[1] if text.startswith("%YAML") else text) or {}
    section = data.get("imc") or {}
    if not isinstance(section, dict):
        raise ValueError(  # noqa: TRY004  (bad content of a file, not a caller's wrong type)
            f"{path}: the imc section must be a mapping, got {type(section).__name__}"
        )
    logging.getLogger(__name__).debug("imc settings from %s: %s", path, section)
    return section

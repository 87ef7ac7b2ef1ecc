"""The reference model: a small LLaVA trained here on SLAKE and VQA-RAD, bundled so the app needs no download.

- :mod:`~monai_imc.reference.data`: auxiliary labels and role pairs (the rows, the held-out slice and the
  prompts are the library's: :mod:`monai_imc.data`, :mod:`monai_imc.prompts`).
- :mod:`~monai_imc.reference.architecture`: the model sizes.
- :mod:`~monai_imc.reference.train`: the recipe (``monai-imc train-reference``).
- :mod:`~monai_imc.reference.evaluate`: the metrics.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_MODEL", "bundled_model_path"]

#: The bundled checkpoint, relative to the repository root.
BUNDLED_MODEL = Path("bundles/monai_imc_vqa/models/reference-vlm")


def bundled_model_path() -> Path:
    """The absolute path of the bundled reference checkpoint in this checkout (it may not exist yet).

    Returns:
        ``<repository>/bundles/monai_imc_vqa/models/reference-vlm``.
    """
    return Path(__file__).resolve().parents[2] / BUNDLED_MODEL

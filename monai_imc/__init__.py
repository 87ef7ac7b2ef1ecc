"""monai-imc: Perceive and Calibrate (IMC) for medical multimodal LLMs.

Training-free robustness of medical multimodal LLMs to image artifacts and noisy clinical text:
an artifact perceiver and a prototype-guided calibrator (PDC) on the model's own vision features,
and self-instantiated agents (SMS) that repair noisy text. See ``docs/`` and ``../shared/DESIGN.md``.

Importing the package needs neither Holoscan nor a GPU; the MONAI Deploy operators live in
``monai_imc.operators`` and import the SDK only there.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

"""The perturbation library of the robustness benchmark: image artifacts and text errors.

Each noise is a seeded MONAI transform with five severity levels; the registry names them all::

    from monai_imc.noise import get_noise, list_noises

    for name in list_noises("image"):
        noisy = get_noise(name).apply(image, severity=3, seed=0)
"""

from __future__ import annotations

from monai_imc.noise.base import SEVERITIES, Noise, NoiseDict, check_severity
from monai_imc.noise.registry import NoiseSpec, get_noise, list_noises, parse_noise_list, register_noise

__all__ = [
    "SEVERITIES",
    "Noise",
    "NoiseDict",
    "NoiseSpec",
    "check_severity",
    "get_noise",
    "list_noises",
    "parse_noise_list",
    "register_noise",
]

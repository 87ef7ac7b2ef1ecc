"""The perturbation library of the robustness benchmark: image artifacts and text errors.

Each noise is a seeded MONAI transform with five severity levels; the registry names them all::

    from monai_imc.noise import get_noise, list_noises

    for name in list_noises("image"):
        noisy = get_noise(name).apply(image, severity=3, seed=0)
"""

from __future__ import annotations

from typing import Any

from monai_imc.noise.registry import NoiseSpec, get_noise, list_noises, parse_noise_list, register_noise

_FROM_BASE = ("SEVERITIES", "Noise", "NoiseDict", "check_severity")  # import MONAI: on first use (PEP 562)


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from monai_imc.noise import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

"""The names of local noises (``local-<image noise>``), without the transforms: light to import (the CLI's
``noise list`` reads them without loading torch or MONAI; :mod:`monai_imc.noise.local` builds the noises)."""

from __future__ import annotations

from monai_imc.noise.registry import LOCAL_PREFIX, get_noise, list_noises

__all__ = ["LOCAL_PREFIX", "base_noise", "is_local_noise", "local_noises", "with_local"]

def is_local_noise(name: str) -> bool:
    """Whether ``name`` names a local noise (``local-<noise>``)."""
    return isinstance(name, str) and name.startswith(LOCAL_PREFIX)


def base_noise(name: str) -> str:
    """The noise a name applies: ``motion`` for ``local-motion``, the name itself otherwise."""
    return name[len(LOCAL_PREFIX) :] if is_local_noise(name) else name


def with_local(noises: list[str] | tuple[str, ...]) -> list[str]:
    """``noises`` followed by the local twin of each global image noise among them (``monai-imc bench --local``).

    Raises:
        ValueError: an unknown noise.
    """
    image = [n for n in noises if not is_local_noise(n) and get_noise(n).modality == "image"]
    return list(dict.fromkeys([*noises, *(LOCAL_PREFIX + n for n in image)]))


def local_noises() -> list[str]:
    """The local twin of every registered image noise, sorted."""
    return [LOCAL_PREFIX + n for n in list_noises("image")]

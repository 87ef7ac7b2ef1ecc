"""The noise registry: every benchmark noise by name, with its modality, cause and per-level parameters.

Usage::

    from monai_imc.noise import get_noise, list_noises

    list_noises("image")                 # ['bias_field', 'blur', ...]
    spec = get_noise("motion")
    spec.levels[2]                       # parameters of severity 3
    noisy = spec.apply(image, severity=3, seed=7)

New noises join with the :func:`register_noise` class decorator; callers that iterate
``list_noises()`` pick them up unchanged.

Listing the noises and reading their causes and levels imports neither MONAI nor torch: the built-in
noises' class attributes (``name``, ``cause``, ``levels``, ``modality``) are read from their modules'
source (:mod:`monai_imc.noise.catalog`) and their transform classes are imported on first use, when
the class itself registers and replaces its catalog entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from monai_imc.noise.catalog import BUILTIN_MODULES, Modality, read_catalog

if TYPE_CHECKING:
    from monai_imc.noise.base import Noise

__all__ = [
    "LOCAL_PREFIX", "NoiseSpec", "get_noise", "list_noises", "local_class_name", "parse_severities", "register_noise",
]

_BUILTIN_MODULES = BUILTIN_MODULES
_REGISTRY: dict[str, NoiseSpec] = {}
_LOADED: set[str] = set()  # the built-in modules imported (their classes registered) or catalogued

N = TypeVar("N", bound="type[Noise]")


@dataclass(frozen=True)
class NoiseSpec:
    """What the registry knows of one noise.

    Attributes:
        name: registry name.
        modality: ``"image"`` or ``"text"``.
        cause: one line on the real-world cause it models.
        levels: the parameters of severity 1..5 (index 0 is severity 1).
        source: the array transform class (a :class:`~monai_imc.noise.base.Noise`), or where to import
            it from (``"module:Class"``) for a built-in noise not imported yet.
    """

    name: str
    modality: Modality
    cause: str
    levels: tuple[Mapping[str, Any], ...]
    source: type[Noise] | str

    @property
    def transform(self) -> type[Noise]:
        """The array transform class (imports its module on first use)."""
        if not isinstance(self.source, str):
            return self.source
        module, _, qualname = self.source.partition(":")
        return getattr(importlib.import_module(module), qualname)  # type: ignore[no-any-return]

    def parameters(self, severity: int) -> dict[str, Any]:
        """The parameters of one severity level (1..5)."""
        from monai_imc.noise.base import check_severity

        return dict(self.levels[check_severity(severity) - 1])

    def make(self, severity: int = 3, seed: int | None = 0) -> Noise:
        """A new transform of this noise at ``severity``, seeded with ``seed``."""
        return self.transform(severity=severity, seed=seed)

    def apply(self, data: Any, severity: int = 3, seed: int | None = 0) -> Any:
        """Corrupt one image (channel-first array) or one text at ``severity`` with ``seed``."""
        return self.make(severity, seed)(data)


def register_noise(cls: N) -> N:
    """Class decorator that adds a :class:`Noise` subclass to the registry under ``cls.name``.

    Raises:
        ValueError: the name is taken, the modality is unknown, or the class does not define five levels.
    """
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} has no registry name")
    known = _REGISTRY.get(name)
    if (
        known is not None
        and known.source is not cls
        and known.source != f"{cls.__module__}:{cls.__qualname__}"
    ):
        taken_by = known.source if isinstance(known.source, str) else known.source.__name__
        raise ValueError(f"noise name {name!r} is already registered by {taken_by}")
    if cls.modality not in ("image", "text"):
        raise ValueError(f"{cls.__name__}: modality must be 'image' or 'text', got {cls.modality!r}")
    if len(cls.levels) != 5:
        raise ValueError(f"{cls.__name__}: expected parameters for 5 severity levels, got {len(cls.levels)}")
    _REGISTRY[name] = NoiseSpec(name, cls.modality, cls.cause, tuple(cls.levels), cls)
    return cls


def _load_builtin() -> None:
    """Catalogue the built-in noises from their modules' source; import a module whose source is not plain."""
    for module in _BUILTIN_MODULES:
        if module in _LOADED:
            continue
        entries = read_catalog(module)
        if entries is None:  # metadata that is not literal: import the module (its classes register)
            importlib.import_module(module)
        else:
            for entry in entries:
                if entry.name not in _REGISTRY:
                    _REGISTRY[entry.name] = NoiseSpec(
                        entry.name, entry.modality, entry.cause, entry.levels, f"{module}:{entry.class_name}"
                    )
        _LOADED.add(module)


def list_noises(modality: Modality | None = None) -> list[str]:
    """Names of the registered noises, sorted, optionally only those of one modality.

    Raises:
        ValueError: ``modality`` is neither ``"image"``, ``"text"`` nor ``None``.
    """
    if modality not in (None, "image", "text"):
        raise ValueError(f"modality must be 'image', 'text' or None, got {modality!r}")
    _load_builtin()
    return sorted(n for n, s in _REGISTRY.items() if modality is None or s.modality == modality)


LOCAL_PREFIX = "local-"
"""Prefix of the registry name of a local noise: ``local-<image noise>`` (:mod:`monai_imc.noise.local`)."""


def local_class_name(noise: str) -> str:
    """The name of the array transform of ``local-<noise>`` in :mod:`monai_imc.noise.local`."""
    return "Local" + "".join(part.title() for part in noise.split("_")) + "Noise"


def _local_spec(name: str) -> NoiseSpec:
    """The entry of ``local-<image noise>``: the wrapped noise's levels; its transform is imported from
    :mod:`monai_imc.noise.local` when first used (that module builds on this one, not the reverse)."""
    base = name[len(LOCAL_PREFIX) :]
    spec = get_noise(base)  # raises for an unknown noise
    if spec.modality != "image" or base.startswith(LOCAL_PREFIX):
        raise ValueError(f"local noise needs a global image noise; {base!r} is not one")
    cause = f"{base} inside a region only (a lesion, else a seeded rectangle)"
    return NoiseSpec(name, "image", cause, tuple(spec.levels), f"monai_imc.noise.local:{local_class_name(base)}")


def get_noise(name: str) -> NoiseSpec:
    """The registry entry of ``name``; ``local-<image noise>`` is that noise inside a region
    (:mod:`monai_imc.noise.local`).

    Raises:
        ValueError: no noise has that name (the message lists the known ones).
    """
    _load_builtin()
    if isinstance(name, str) and name.startswith(LOCAL_PREFIX) and name not in _REGISTRY:
        return _local_spec(name)
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown noise {name!r}; known noises: {', '.join(sorted(_REGISTRY))}") from None


def _kind(modality: str) -> str:
    return "an image noise" if modality == "image" else "a text noise"


def parse_severities(text: str) -> list[int]:
    """Parse ``"3"``, ``"1-5"`` or ``"1,3,5"`` into severity levels (validated later)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            start, _, stop = part.partition("-")
            out.extend(range(int(start), int(stop) + 1))
        elif part:
            out.append(int(part))
    if not out:
        raise ValueError(f"no severities in {text!r}")
    return out


def parse_noise_list(text: str | None, modality: Modality | None = None) -> list[str]:
    """Parse a comma-separated list of noise names (``None``, ``""`` or ``"all"``: every noise of ``modality``).

    Raises:
        ValueError: a name is unknown or of the other modality.
    """
    if text is None or text.strip() in ("", "all"):
        return list_noises(modality)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        spec = get_noise(n)
        if modality is not None and spec.modality != modality:
            raise ValueError(f"noise {n!r} is {_kind(spec.modality)}, not {_kind(modality)}")
    return names

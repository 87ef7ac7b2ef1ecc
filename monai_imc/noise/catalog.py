"""The built-in noises' names, modalities, causes and levels, read from their modules' source.

The noise classes (:mod:`monai_imc.noise.image`, :mod:`monai_imc.noise.text`) own their metadata as
class attributes; importing them imports MONAI, torch and torchio (seconds). Listing the noises does not
need the classes, so :func:`read_catalog` reads those attributes from the source with :mod:`ast`,
without importing it. A class whose attributes are not literals makes it return ``None``, and the
registry imports the module instead (slower, same answer). ``tests/noise/test_catalog.py`` checks that
the catalog equals the imported classes' attributes.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["BUILTIN_MODULES", "CatalogEntry", "Modality", "read_catalog"]

Modality = Literal["image", "text"]

BUILTIN_MODULES: tuple[str, ...] = ("monai_imc.noise.image", "monai_imc.noise.text")
"""The modules whose ``@register_noise`` classes are the built-in noises."""

_ATTRIBUTES = ("name", "modality", "cause", "levels")


@dataclass(frozen=True)
class CatalogEntry:
    """One registered noise class as its source declares it."""

    class_name: str
    name: str
    modality: Modality
    cause: str
    levels: tuple[Mapping[str, Any], ...]


def _literal_attributes(node: ast.ClassDef) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for statement in node.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in _ATTRIBUTES:
            try:
                out[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    return out


def _is_registered(node: ast.ClassDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "register_noise" for d in node.decorator_list)


def read_catalog(module: str) -> list[CatalogEntry] | None:
    """The ``@register_noise`` classes of ``module`` with their literal class attributes.

    Attributes a class does not set come from its base classes in the same module.

    Args:
        module: a dotted module name, e.g. ``"monai_imc.noise.image"``.

    Returns:
        One entry per registered class in source order, or ``None`` when the source cannot be found or
        a registered class's attributes are not all literals (then the caller imports the module).
    """
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), filename=spec.origin)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    entries: list[CatalogEntry] = []
    for node in classes.values():
        if not _is_registered(node):
            continue
        attributes: dict[str, Any] = {}
        chain: ast.ClassDef | None = node
        while chain is not None:
            own = _literal_attributes(chain)
            if own is None:
                return None
            attributes = {**own, **attributes}
            bases = [b.id for b in chain.bases if isinstance(b, ast.Name) and b.id in classes]
            chain = classes[bases[0]] if bases else None
        if set(_ATTRIBUTES) - set(attributes) or attributes["modality"] not in ("image", "text"):
            return None
        levels = attributes["levels"]
        if not isinstance(levels, tuple) or not all(isinstance(level, dict) for level in levels):
            return None
        entries.append(
            CatalogEntry(
                node.name, str(attributes["name"]), attributes["modality"], str(attributes["cause"]), levels
            )
        )
    return entries

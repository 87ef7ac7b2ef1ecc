"""The one reader of a MONAI bundle: :class:`monai.bundle.ConfigParser` over ``configs/inference.json``.

The app (:func:`monai_imc.deploy.context.load_context`), the benchmark
(:func:`monai_imc.bench.model_spec.load_bench_model`) and the tests build the model, the prototype bank, the
IMC pipeline and the SMS refiner from the ids ``model``, ``bank``, ``pipeline`` and ``refiner``, each with
its ``_target_``: a component swapped in ``inference.json`` is what every command runs.

Example:
    >>> from monai_imc.bundle import bundle_parser
    >>> parser = bundle_parser("bundles/monai_imc_vqa", overrides={"device": "cpu"})  # doctest: +SKIP
    >>> model = parser.get_parsed_content("model")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CONFIG", "METADATA", "bundle_parser", "find_bundle", "parsed", "read_metadata"]

CONFIG = Path("configs") / "inference.json"
"""Where a bundle keeps its inference config, relative to the bundle root."""
METADATA = Path("configs") / "metadata.json"
"""Where a bundle keeps its metadata, relative to the bundle root."""


def find_bundle(path: str | os.PathLike[str]) -> Path:
    """The bundle folder at ``path``: ``path`` itself, or the one sub-folder holding a bundle.

    The second form is a MAP's model folder (``/opt/holoscan/models/<bundle>/``) or ``-m MODELS``.

    Raises:
        FileNotFoundError: no bundle there, or several.
    """
    root = Path(path)
    if (root / CONFIG).is_file():
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"bundle folder {root} does not exist")
    found = sorted(p for p in root.iterdir() if (p / CONFIG).is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no MONAI bundle ({CONFIG}) in {root} or its sub-folders")
    raise FileNotFoundError(f"{len(found)} bundles in {root} ({', '.join(p.name for p in found)}); name one")


def bundle_parser(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Any:
    """A :class:`~monai.bundle.ConfigParser` of a bundle's ``configs/inference.json``.

    Args:
        path: the bundle folder, or a folder holding exactly one bundle.
        overrides: ``id -> value`` set after reading (MONAI ids: ``"device"``, ``"refiner#max_rounds"``);
            a ``None`` value leaves the config's own.

    Returns:
        The parser, with ``bundle_root`` set to the bundle's absolute path.

    Raises:
        FileNotFoundError: no bundle at ``path``.
    """
    from monai.bundle import ConfigParser

    bundle = find_bundle(path).resolve()
    parser = ConfigParser()
    parser.read_config(str(bundle / CONFIG))
    parser["bundle_root"] = str(bundle)
    for key, value in (overrides or {}).items():
        if value is not None:
            parser[key] = value
    return parser


def parsed(parser: Any, key: str, default: Any = None) -> Any:
    """The parsed (instantiated) content of ``key``, or ``default`` where the config has no such id."""
    if key not in parser:
        return default
    return parser.get_parsed_content(key)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A bundle's ``configs/metadata.json``.

    Raises:
        FileNotFoundError: no bundle, or no metadata file.
        TypeError: the metadata is not a JSON object.
    """
    file = find_bundle(path) / METADATA
    if not file.is_file():
        raise FileNotFoundError(f"{file}: bundle metadata missing")
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{file}: metadata must be a JSON object")
    return data

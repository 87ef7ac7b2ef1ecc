"""What ``--model`` names: a MONAI bundle, a local HF checkpoint directory or a hub id.

A bundle (a folder with ``configs/inference.json``) gives the model, its prototype bank and the SMS
refiner's settings from its config (``model_path``, ``bank_path``, ``refiner``); a checkpoint directory or a
hub id gives the model only, its bank then comes from ``--bank``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_imc.models.base import VisionLanguageModel
from monai_imc.prototypes import PrototypeBank

__all__ = ["LoadedModel", "bundle_settings", "load_bench_model"]


@dataclass
class LoadedModel:
    """A model ready for the benchmark.

    Attributes:
        model: the loaded model.
        bank: its prototype bank, or ``None``.
        refiner_options: keyword arguments of :class:`~monai_imc.refine.SMSRefiner` (from a bundle's config).
        source: ``bundle``, ``directory`` or ``hub``; ``model_path``/``bank_path``: where they came from.
    """

    model: VisionLanguageModel
    bank: PrototypeBank | None
    refiner_options: dict[str, Any] = field(default_factory=dict)
    source: str = "hub"
    model_path: str = ""
    bank_path: str | None = None


def bundle_settings(bundle: str | Path) -> tuple[str, str | None, dict[str, Any]]:
    """A bundle's model path, bank path (``None`` if it names none) and SMS refiner options, from its
    ``configs/inference.json``.

    Raises:
        ValueError: the config names no ``model_path``.
    """
    bundle = Path(bundle)
    from monai.bundle import ConfigParser

    config = bundle / "configs" / "inference.json"
    parser = ConfigParser()
    parser.read_config(str(config))
    parser["bundle_root"] = str(bundle)
    try:
        model_path = str(parser.get_parsed_content("model_path"))
    except KeyError as err:
        raise ValueError(f"{config}: no model_path in the bundle config") from err
    bank_path = str(parser.get_parsed_content("bank_path")) if "bank_path" in parser else None
    refiner = parser.get("refiner") or {}
    options = {k: parser.get_parsed_content(f"refiner::{k}") for k in refiner if not k.startswith("_") and k != "model"}
    return model_path, bank_path, options


def load_bench_model(spec: str, bank: str | None = None, device: str | None = None,
                     dtype: str | None = None) -> LoadedModel:
    """Load the model (and bank) that ``--model spec`` / ``--bank bank`` name.

    Args:
        spec: a bundle folder, a checkpoint folder or a hub id.
        bank: a prototype bank folder; overrides a bundle's own bank.
        device: as for :func:`~monai_imc.models.load_model`.
        dtype: as for :func:`~monai_imc.models.load_model`.

    Raises:
        ValueError: the bundle config lacks ``model_path``, or the bank is not the model's.
        FileNotFoundError: the bank folder is missing.
    """
    from monai_imc.models import load_model

    path = Path(spec)
    options: dict[str, Any] = {}
    if (path / "configs" / "inference.json").is_file():
        model_path, bank_path, options = bundle_settings(path)
        source = "bundle"
    else:
        model_path, bank_path = spec, None
        source = "directory" if path.is_dir() else "hub"
    bank_path = bank or bank_path
    if bank_path is not None and not Path(bank_path).is_dir():
        raise FileNotFoundError(f"{bank_path}: prototype bank folder not found")
    model = load_model(model_path, device=device, dtype=dtype)
    loaded_bank = PrototypeBank.load(bank_path, model=model) if bank_path else None
    return LoadedModel(model, loaded_bank, options, source, model_path, bank_path)

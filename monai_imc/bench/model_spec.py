"""What ``--model`` names: a MONAI bundle, a local HF checkpoint directory or a hub id.

A bundle (a folder with ``configs/inference.json``) is read by the one bundle reader
(:func:`monai_imc.bundle.bundle_parser`): the model, its prototype bank and the SMS refiner are the config's
``model``, ``bank`` and ``refiner`` components, ``_target_`` honoured, so a component swapped in the config
is what the benchmark runs. A checkpoint directory or a hub id gives the model only; its bank then comes
from ``--bank``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_imc.bundle import CONFIG, bundle_parser, parsed
from monai_imc.models.base import VisionLanguageModel
from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import PrototypeBank
from monai_imc.refine import SMSPrompts, SMSRefiner

__all__ = ["LoadedModel", "bundle_settings", "load_bench_model"]


@dataclass
class LoadedModel:
    """A model ready for the benchmark.

    Attributes:
        model: the loaded model.
        bank: its prototype bank, or ``None``.
        refiner_options: the bundle config's ``refiner`` settings (for the run's record; empty otherwise).
        source: ``bundle``, ``directory`` or ``hub``; ``model_path``/``bank_path``: where they came from.
        parser: the bundle's :class:`~monai.bundle.ConfigParser` (``None`` for a checkpoint or hub id).
    """

    model: VisionLanguageModel
    bank: PrototypeBank | None
    refiner_options: dict[str, Any] = field(default_factory=dict)
    source: str = "hub"
    model_path: str = ""
    bank_path: str | None = None
    parser: Any = field(default=None, repr=False)

    def refiner(self, text_model: VisionLanguageModel, prompts: SMSPrompts) -> SMSRefiner:
        """The SMS refiner: a bundle's ``refiner`` component with ``model`` and ``prompts`` set to these,
        else a default :class:`~monai_imc.refine.SMSRefiner`.

        Raises:
            TypeError: the bundle's ``refiner`` builds something else.
        """
        if self.parser is None or "refiner" not in self.parser:
            return SMSRefiner(text_model, prompts=prompts)
        self.parser["refiner#model"] = text_model
        self.parser["refiner#prompts"] = prompts
        refiner = self.parser.get_parsed_content("refiner")
        if not isinstance(refiner, SMSRefiner):
            raise TypeError(f"the bundle's 'refiner' must build an SMSRefiner, got {type(refiner).__name__}")
        return refiner

    def pipeline(self, refiner: SMSRefiner) -> IMCPipeline:
        """The IMC pipeline over this model, bank and ``refiner``: a bundle's ``pipeline`` component (its
        calibration settings), else a default :class:`~monai_imc.pipeline.IMCPipeline`.

        Raises:
            TypeError: the bundle's ``pipeline`` builds something else.
        """
        if self.parser is None or "pipeline" not in self.parser:
            return IMCPipeline(self.model, self.bank, check_bank=False, refiner=refiner)
        for key, value in (("model", self.model), ("bank", self.bank), ("refiner", refiner)):
            self.parser[f"pipeline#{key}"] = value  # the parts already built: nothing is loaded twice
        if "refine_process" in self.parser["pipeline"]:  # its copy is the config's refiner, not this one
            self.parser["pipeline#refine_process"] = None
        pipeline = self.parser.get_parsed_content("pipeline")
        if not isinstance(pipeline, IMCPipeline):
            raise TypeError(
                f"the bundle's 'pipeline' must build an IMCPipeline, got {type(pipeline).__name__}"
            )
        return pipeline


def bundle_settings(bundle: str | Path) -> tuple[str, str | None, dict[str, Any]]:
    """A bundle's model path, bank path (``None`` if it names none) and SMS refiner settings (as written
    in ``configs/inference.json``, without ``_target_`` and ``model``).

    Raises:
        ValueError: the config names no ``model_path``.
    """
    parser = bundle_parser(bundle)
    if "model_path" not in parser:
        raise ValueError(f"{Path(bundle) / CONFIG}: no model_path in the bundle config")
    model_path = str(parser.get_parsed_content("model_path"))
    bank_path = parsed(parser, "bank_path")
    return model_path, None if bank_path is None else str(bank_path), _refiner_options(parser)


def _refiner_options(parser: Any) -> dict[str, Any]:
    refiner = parser.get("refiner") or {}
    return {
        k: parser.get_parsed_content(f"refiner::{k}")
        for k in refiner
        if not k.startswith("_") and k not in ("model", "prompts")
    }


def load_bench_model(
    spec: str, bank: str | None = None, device: str | None = None, dtype: str | None = None
) -> LoadedModel:
    """Load the model (and bank) that ``--model spec`` / ``--bank bank`` name.

    Args:
        spec: a bundle folder, a checkpoint folder or a hub id.
        bank: a prototype bank folder; overrides a bundle's own bank (its ``bank_path``).
        device: as for :func:`~monai_imc.models.load_model` (a bundle's ``device``).
        dtype: as for :func:`~monai_imc.models.load_model` (a bundle's ``model#dtype``).

    Raises:
        ValueError: the bank is not the model's.
        FileNotFoundError: the bank folder is missing.
        TypeError: a bundle's ``model`` or ``bank`` builds something else.
    """
    from monai_imc.models import load_model

    if bank is not None and not Path(bank).is_dir():
        raise FileNotFoundError(f"{bank}: prototype bank folder not found")
    path = Path(spec)
    if (path / CONFIG).is_file():
        parser = bundle_parser(path, {"device": device, "bank_path": bank})
        if dtype is not None:
            parser["model#dtype"] = dtype
        bank_path = parsed(parser, "bank_path")
        if bank_path is not None and not Path(bank_path).is_dir():
            raise FileNotFoundError(f"{bank_path}: prototype bank folder not found")
        model = parser.get_parsed_content("model")
        loaded_bank = parsed(parser, "bank")
        if not isinstance(model, VisionLanguageModel) or not isinstance(
            loaded_bank, (PrototypeBank, type(None))
        ):
            raise TypeError(f"{path / CONFIG}: 'model' and 'bank' must build a model and a PrototypeBank")
        model_path = str(parsed(parser, "model_path", model.name))
        return LoadedModel(
            model,
            loaded_bank,
            _refiner_options(parser),
            "bundle",
            model_path,
            None if bank_path is None else str(bank_path),
            parser,
        )
    model = load_model(spec, device=device, dtype=dtype)
    loaded_bank = PrototypeBank.load(bank, model=model) if bank else None
    return LoadedModel(model, loaded_bank, {}, "directory" if path.is_dir() else "hub", spec, bank)

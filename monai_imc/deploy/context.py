"""The parts the app needs, built once from a MONAI bundle and shared by every operator.

``configs/inference.json`` names the model, the bank, the pipeline and the refiner with ``_target_``
(a user swaps any of them by editing the config), plus the app's settings: the standing questions, the
DICOM text fields, views per series, answer length, the sidecar's file name.

Usage::

    from monai_imc.deploy.context import load_context

    context = load_context("bundles/monai_imc_vqa")       # or a folder holding one bundle (a MAP's models/)
    context.pipeline.model is context.refiner.model        # True: one model, loaded once
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_imc.bundle import CONFIG, bundle_parser, find_bundle, parsed
from monai_imc.deploy.sr_step import SR_WORKER
from monai_imc.dicom.frames import DEFAULT_MAX_PIXELS
from monai_imc.dicom.sr import AlgorithmInfo
from monai_imc.dicom.sr_file import warm_up_sr_writer
from monai_imc.dicom.views import CT_PRESETS
from monai_imc.perceive import warm_up_measures_worker
from monai_imc.pipeline import IMCPipeline
from monai_imc.refine import SMSRefiner
from monai_imc.workers import beside

__all__ = [
    "CONFIG",
    "AppSettings",
    "IMCContext",
    "build_context",
    "default_bundle",
    "find_bundle",
    "load_context",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppSettings:
    """The app's settings from the bundle config.

    Attributes:
        standing_questions: asked of every assessed image.
        text_fields: DICOM keywords whose text is refined and kept in the SR (read from the dataset and
            from its Request Attributes Sequence).
        n_views: key views per volume or multi-frame instance.
        max_new_tokens: longest answer.
        sidecar_name: file name of the per-study JSON sidecar of questions and texts.
        ct_preset: force a CT window preset where a file has none (``None``: from BodyPartExamined).
        max_pixels: the decode budget per frame: larger images are read reduced, or refused with a
            reason when compressed (``monai_imc.dicom.frames``).
    """

    standing_questions: tuple[str, ...] = ()
    text_fields: tuple[str, ...] = ()
    n_views: int = 1
    max_new_tokens: int = 24
    sidecar_name: str = "imc_questions.json"
    ct_preset: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        # a bundle config gives JSON lists: keep tuples, so settings stay immutable and comparable
        object.__setattr__(self, "standing_questions", tuple(self.standing_questions))
        object.__setattr__(self, "text_fields", tuple(self.text_fields))
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be at least 1, got {self.max_pixels}")
        if self.n_views < 1:
            raise ValueError(f"n_views must be at least 1, got {self.n_views}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.ct_preset is not None and self.ct_preset not in CT_PRESETS:
            raise ValueError(f"unknown ct_preset {self.ct_preset!r}; known: {sorted(CT_PRESETS)}")
        for q in self.standing_questions:
            if not isinstance(q, str) or not q.strip():
                raise ValueError(f"standing questions must be non-empty strings, got {q!r}")


@dataclass(frozen=True)
class IMCContext:
    """One model with its bank, pipeline and refiner, and the app's settings.

    Attributes:
        pipeline: perceive, calibrate, answer.
        refiner: the SMS text refiner (the same model as ``pipeline``).
        settings: the app's settings.
        algorithm: what the SRs record as the algorithm (model id, bank hash, version).
        bundle: the bundle folder it was built from (``None`` when built in code).
    """

    pipeline: IMCPipeline
    refiner: SMSRefiner
    settings: AppSettings
    algorithm: AlgorithmInfo
    bundle: Path | None = None

    def __post_init__(self) -> None:
        if self.pipeline.model is not self.refiner.model:
            raise ValueError("the pipeline and the refiner must share one model (configure both with @model)")


def default_bundle() -> Path:
    """The bundle shipped beside the package in a source checkout (``bundles/monai_imc_vqa``).

    Raises:
        FileNotFoundError: not a source checkout (an installed wheel has no bundle): pass one.
    """
    bundle = Path(__file__).resolve().parents[2] / "bundles" / "monai_imc_vqa"
    if not (bundle / CONFIG).is_file():
        raise FileNotFoundError(f"no bundle at {bundle} (not a source checkout): name one with --bundle")
    return bundle


def build_context(
    pipeline: IMCPipeline,
    refiner: SMSRefiner,
    settings: AppSettings,
    model_id: str | None = None,
    bundle: str | os.PathLike[str] | None = None,
) -> IMCContext:
    """The app's context from its parts (the ``context`` id of ``inference.json`` names this function).

    Args:
        pipeline: the IMC pipeline.
        refiner: the SMS refiner (the same model as ``pipeline``).
        settings: the app's settings.
        model_id: what the SRs record as the model (default: the model's folder name).
        bundle: the bundle folder the parts came from.

    Raises:
        TypeError: ``pipeline`` or ``refiner`` is something else.
        ValueError: the two do not share one model.
    """
    if not isinstance(pipeline, IMCPipeline) or not isinstance(refiner, SMSRefiner):
        raise TypeError(
            f"'pipeline' must build an IMCPipeline and 'refiner' an SMSRefiner, got "
            f"{type(pipeline).__name__} and {type(refiner).__name__}"
        )
    model_id = model_id or Path(str(pipeline.model.name)).name
    algorithm = AlgorithmInfo(model_id=str(model_id), bank_hash=f"sha256:{pipeline.bank.bank_hash}")
    return IMCContext(pipeline, refiner, settings, algorithm, Path(bundle) if bundle else None)


def load_context(path: str | os.PathLike[str], device: str | None = None) -> IMCContext:
    """Build the model, bank, pipeline and refiner of a bundle once, with MONAI's ConfigParser
    (:func:`monai_imc.bundle.bundle_parser`): the ``context`` id, or for a config without one, the ids
    ``pipeline``, ``refiner`` and the settings' own ids.

    Args:
        path: the bundle folder, or a folder holding exactly one bundle.
        device: override the config's device (``"cpu"``, ``"cuda"``).

    Returns:
        The shared context.

    Raises:
        FileNotFoundError: no bundle at ``path``.
        ValueError: a part is missing or the settings are invalid; the message names the config file.
        TypeError: ``pipeline`` or ``refiner`` builds something else.
    """
    bundle = find_bundle(path).resolve()
    config_file = bundle / CONFIG
    # the worker processes start while the model loads: highdicom's first SR costs about a second of
    # table loading, the measures' process about 0.2 s of start-up
    _warm_up_workers()
    parser = bundle_parser(bundle, {"device": device})
    try:
        if "context" in parser:
            context = parser.get_parsed_content("context")
        else:
            settings = AppSettings(
                standing_questions=tuple(_get(parser, "standing_questions", [])),
                text_fields=tuple(_get(parser, "text_fields", [])),
                n_views=int(_get(parser, "n_views", 1)),
                max_new_tokens=int(_get(parser, "max_new_tokens", 24)),
                sidecar_name=str(_get(parser, "sidecar_name", "imc_questions.json")),
                ct_preset=_get(parser, "ct_preset", None),
                max_pixels=int(_get(parser, "max_pixels", DEFAULT_MAX_PIXELS)),
            )
            context = build_context(
                parser.get_parsed_content("pipeline"),
                parser.get_parsed_content("refiner"),
                settings,
                _get(parser, "model_id", None),
                bundle,
            )
    except TypeError as exc:
        raise TypeError(f"{config_file}: {exc}") from exc
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{config_file}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(context, IMCContext):
        raise TypeError(f"{config_file}: 'context' must build an IMCContext, got {type(context).__name__}")
    logger.info(
        "loaded bundle %s: model %s, bank %s",
        _bundle_name(bundle),
        context.algorithm.model_id,
        context.algorithm.bank_hash[:19],
    )
    return context


def _warm_up_workers() -> None:
    """Start the SR worker process and the one beside the encode, and warm them
    (:func:`~monai_imc.dicom.sr_file.warm_up_sr_writer`, :func:`~monai_imc.perceive.warm_up_measures_worker`)
    while the model loads; a failure is logged only (the first real task does the same work, and reports
    errors)."""

    def done(future: Future[None]) -> None:
        if future.exception() is not None:
            logger.debug("worker warm-up failed: %r", future.exception())

    beside(SR_WORKER, warm_up_sr_writer).add_done_callback(done)
    warm_up_measures_worker().add_done_callback(done)


def _get(parser: Any, key: str, default: Any) -> Any:
    """A parsed config value, or ``default`` when the config has no such key."""
    try:
        return parsed(parser, key, default)
    except KeyError:
        return default


def _bundle_name(bundle: Path) -> str:
    meta = bundle / "configs" / "metadata.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        return f"{data.get('name', bundle.name)} {data.get('version', '')}".strip()
    except (OSError, ValueError):
        return bundle.name

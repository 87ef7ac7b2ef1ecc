"""IMCPipeline, the method: encode, perceive, (restore), calibrate, refine, answer; every intermediate result kept.

One vision pass per image: the features from :meth:`IMCPipeline.encode` feed the perceiver, the calibrator
and the answer. With PDC off, the answer is the plain model's.

Restoration (:mod:`monai_imc.restore`, off unless the pipeline's :class:`~monai_imc.restore.Restorer` is
enabled) is the one exception, and one mechanism, :meth:`IMCPipeline.restore_view`: the perceiver reads the
features of the view as given, so the order is encode -> perceive -> restore the view (the correction the
perceived artifact picks) -> encode the restored view -> perceive it again -> calibrate (PDC acts on what the
perceiver sees in the restored view: a residual artifact is calibrated, a view restored to clean passes the
gate) -> answer. A view that restoration leaves unchanged costs no second vision pass.

Concurrency: the text and the image do not depend on each other until the answer, so :meth:`IMCPipeline.run`
starts the SMS refinement on a worker thread (the agents' text-only calls take the model's text lock, not
the lock of image calls) and the perceiver's physics measures in a worker process
(:meth:`IMCPipeline.encode_and_perceive`) while the model encodes; the ``refine`` and ``perceive`` stages
then time only what they add to the wall time (the wait). The results are those of running them in turn.

The app (``monai_imc.deploy.work``), the
benchmark (``monai_imc.bench.runner``) and the measurements call these steps; :meth:`IMCPipeline.run` runs
them all on one image and one text.

Example::

    pipeline = IMCPipeline(load_model(path), PrototypeBank.load(bank_dir), refiner=SMSRefiner(model))
    result = pipeline.run(image, "Is there a plueral efusion?")
    result.refinement.text, result.perception.noise, result.calibration.applied, result.answer
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monai_imc.calibrate import Calibration, PDCCalibrator, Variant
from monai_imc.models.base import Capabilities, ImageInput, VisionFeatures, VisionLanguageModel
from monai_imc.perceive import ArtifactPerceiver, Perception
from monai_imc.prototypes import PrototypeBank
from monai_imc.refine.process import RefinerProcess
from monai_imc.restore import Restoration, Restorer
from monai_imc.timing import timed
from monai_imc.workers import worker

if TYPE_CHECKING:
    from monai_imc.refine import Refinement, SMSRefiner

logger = logging.getLogger(__name__)

__all__ = ["IMCAnswer", "IMCPipeline", "IMCRun", "RestoredView"]


@dataclass(frozen=True)
class IMCAnswer:
    """An answer and everything that led to it (perception and calibration; see :class:`IMCRun` for refine).

    Attributes:
        question: the question asked.
        answer: the model's answer.
        perception: what the perceiver saw.
        calibration: what the calibrator did.
        pdc: whether calibration was enabled.
    """

    question: str
    answer: str
    perception: Perception
    calibration: Calibration
    pdc: bool


@dataclass(frozen=True)
class IMCRun:
    """Every intermediate result of :meth:`IMCPipeline.run`.

    Attributes:
        text: the text as given.
        refinement: what SMS did to it (``None`` when refine was off); ``refinement.text`` was asked.
        question: the text asked.
        features: the vision features the answer came from (calibrated where PDC changed them).
        perception: what the perceiver saw.
        calibration: what the calibrator did.
        answer: the model's answer.
        pdc: whether calibration was enabled.
        restoration: what restoration did (``None`` when it was off); when it changed the view,
            ``features`` are those of the restored view and ``calibration`` acted on its perception.
    """

    text: str
    refinement: Refinement | None
    question: str
    features: VisionFeatures
    perception: Perception
    calibration: Calibration
    answer: str
    pdc: bool
    restoration: Restoration | None = None


@dataclass(frozen=True)
class RestoredView:
    """One view after :meth:`IMCPipeline.restore_view`.

    Attributes:
        view: the restored view (the view as given when nothing was done).
        features: the model's features of ``view`` (the given ones when nothing was done).
        perception: the perceiver's verdict on ``view`` (the given one when nothing was done): what PDC acts on.
        restoration: what was done.
    """

    view: ImageInput
    features: VisionFeatures
    perception: Perception
    restoration: Restoration


class IMCPipeline:
    """Perceive, calibrate, refine and answer with one model, its prototype bank and its SMS refiner.

    Args:
        model: the multimodal LLM.
        bank: its prototype bank (checked against the model's fingerprint); ``None``: a pipeline without
            the image half (perceive and calibrate raise).
        pdc: calibrate flagged images (default on).
        variant: the calibration variant (``"auto"``: the maps fitted on the answers where the bank has them,
            else the ridge maps; :attr:`variant` is the one resolved).
        check_bank: verify that the bank was built with ``model``.
        refiner: the SMS refiner of the text half (``None``: refine raises, :meth:`run` does not refine).
        restorer: perceiver-guided image restoration (default: a disabled :class:`~monai_imc.restore.Restorer`;
            a bundle enables it in its config's ``restore`` section).
        refine_process: where :meth:`run` refines beside the encode: a copy of ``refiner`` in a worker process
            (:class:`~monai_imc.refine.process.RefinerProcess`; for a model on the CPU); ``None``: the
            refiner itself, in a worker thread. :meth:`refine` always refines in turn, here.

    Raises:
        ValueError: ``refine_process`` refines for another refiner.
    """

    def __init__(
        self,
        model: VisionLanguageModel,
        bank: PrototypeBank | None,
        pdc: bool = True,
        variant: Variant = "ridge",
        check_bank: bool = True,
        refiner: SMSRefiner | None = None,
        restorer: Restorer | None = None,
        refine_process: RefinerProcess | None = None,
    ) -> None:
        if refine_process is not None and refine_process.refiner is not refiner:
            raise ValueError("refine_process must run a copy of the pipeline's own refiner")
        if bank is not None and check_bank:
            bank.check_model(model)
        self.model = model
        self.bank = bank
        self.pdc = pdc
        self.refiner = refiner
        self.refine_process = refine_process
        self.capabilities = Capabilities.of(model)
        self.perceiver = ArtifactPerceiver(bank) if bank is not None else None
        self.calibrator = PDCCalibrator(bank, variant=variant) if bank is not None else None
        self.variant: Variant = self.calibrator.variant if self.calibrator is not None else variant
        self.restorer = restorer if restorer is not None else Restorer(enabled=False)

    # ------------------------------------------------------------------ steps
    def encode(self, images: ImageInput | Sequence[ImageInput]) -> VisionFeatures:
        """One vision pass over the images (:meth:`VisionLanguageModel.encode_images`)."""
        with timed("encode"):
            return self.model.encode_images(images)

    def perceive(
        self,
        features: VisionFeatures,
        views: Sequence[ImageInput] | None = None,
        modalities: Sequence[str | None] | None = None,
    ) -> list[Perception]:
        """One perception per image of ``features``; ``views`` (the images the model saw, in order) add the
        physics measures and the not-assessable checks of the fused perceiver; ``modalities`` (DICOM
        modality per image, where known) the check that the bank has reference images of that modality.

        Raises:
            RuntimeError: the pipeline has no bank.
        """
        if self.perceiver is None:
            raise RuntimeError("perceive needs a prototype bank; this pipeline has none")
        with timed("perceive"):
            return self.perceiver.perceive(
                features, views=None if views is None else list(views), modalities=modalities
            )

    def encode_and_perceive(
        self, views: Sequence[ImageInput], modalities: Sequence[str | None] | None = None
    ) -> tuple[VisionFeatures, list[Perception]]:
        """One vision pass over ``views`` and their perceptions (with the views' physics measures).

        The measures read only the views, so they run in the worker process beside the encode while the model
        encodes (:meth:`ArtifactPerceiver.measure_async`); the ``perceive`` stage then times only what
        perception adds to the wall time: waiting for the measures, and the discriminant.

        Raises:
            RuntimeError: the pipeline has no bank.
        """
        if self.perceiver is None:
            raise RuntimeError("perceive needs a prototype bank; this pipeline has none")
        pending = self.perceiver.measure_async(views)
        features = self.encode(list(views))
        with timed("perceive"):
            measured = pending.result() if pending is not None else None
            return features, self.perceiver.perceive(
                features, views=list(views), modalities=modalities, measured=measured
            )

    def calibrate(
        self, features: VisionFeatures, perceptions: Sequence[Perception], pdc: bool | None = None
    ) -> tuple[VisionFeatures, list[Calibration]]:
        """PDC on the flagged images; with ``pdc`` off (the argument, else the pipeline's setting) the
        features unchanged and a ``"disabled"`` record per image.

        Raises:
            RuntimeError: PDC is on and the pipeline has no bank.
        """
        use_pdc = self.pdc if pdc is None else pdc
        if not use_pdc:
            off = Calibration(False, None, None, 0.0, self.variant, "disabled")
            return features, [off] * len(perceptions)
        if self.calibrator is None:
            raise RuntimeError("calibrate needs a prototype bank; this pipeline has none")
        with timed("calibrate"):
            features, records = self.calibrator.calibrate(features, list(perceptions))
        return features, list(records)

    def restore(
        self, views: Sequence[ImageInput], perceptions: Sequence[Perception]
    ) -> tuple[list[ImageInput], list[Restoration]]:
        """The views corrected for their perceived artifacts (:class:`~monai_imc.restore.Restorer`), and a record
        per view; clean, not-assessable and uncorrectable views are returned as given. Runs whether or not the
        restorer is enabled (the switch is for :meth:`run` and the app).

        Raises:
            ValueError: not one perception per view.
        """
        if len(views) != len(perceptions):
            raise ValueError(f"{len(views)} views for {len(perceptions)} perceptions")
        done = [self.restorer.restore(v, p) for v, p in zip(views, perceptions)]
        return [v for v, _ in done], [r for _, r in done]

    def restore_view(
        self, view: ImageInput, features: VisionFeatures, perception: Perception, modality: str | None = None
    ) -> RestoredView:
        """Restore one view, then encode and perceive the restored view (see the module docstring); the given
        features and perception when restoration left the view unchanged. ``modality``: the view's DICOM
        modality, where known (see :meth:`perceive`)."""
        restored, records = self.restore([view], [perception])
        if not records[0].applied:
            return RestoredView(view, features, perception, records[0])
        new_features, new_perceptions = self.encode_and_perceive([restored[0]], modalities=[modality])
        new_perception = new_perceptions[0]
        return RestoredView(restored[0], new_features, new_perception, records[0])

    def refine(self, text: str) -> Refinement:
        """The SMS refinement of a text (the original is kept in the result).

        Raises:
            RuntimeError: the pipeline has no refiner.
        """
        if self.refiner is None:
            raise RuntimeError("refine needs an SMS refiner; this pipeline has none")
        with timed("refine"):
            return self.refiner.refine(text)

    def _refine_async(self, text: str) -> Future[Refinement]:
        """Start :meth:`refine`'s work on the text worker thread (which waits on :attr:`refine_process` where
        there is one); untimed there: :meth:`run` times the wait.

        Raises:
            RuntimeError: the pipeline has no refiner.
        """
        if self.refiner is None:
            raise RuntimeError("refine needs an SMS refiner; this pipeline has none")
        agent = self.refine_process if self.refine_process is not None else self.refiner
        return worker("imc-text").submit(agent.refine, text)

    def generate(self, features: VisionFeatures, question: str, **gen: Any) -> str:
        """The model's answer to ``question`` about the images behind ``features`` (no vision pass)."""
        with timed("answer"):
            return self.model.generate(features, question, **gen)

    def generate_many(
        self, features: Sequence[VisionFeatures], questions: Sequence[str], **gen: Any
    ) -> list[tuple[str, float | None]]:
        """Answers, each about its own features, in one batched call where the model can
        (:class:`~monai_imc.models.base.BatchGenerator`, which also gives each answer's probability), else one
        by one (probability ``None``)."""
        with timed("answer"):
            if self.capabilities.batch_generate:
                out = self.model.generate_batch(list(features), list(questions), **gen)  # type: ignore[attr-defined]
                return [(g.text, g.probability) for g in out]
            return [(self.model.generate(f, q, **gen), None) for f, q in zip(features, questions)]

    # ------------------------------------------------------------------ the method
    def answer(
        self,
        image: ImageInput,
        question: str,
        pdc: bool | None = None,
        modality: str | None = None,
        **gen: Any,
    ) -> IMCAnswer:
        """Perceive, calibrate and answer ``question`` about ``image`` (no refine; see :meth:`run`);
        ``pdc`` overrides the pipeline's setting for this call; ``modality``: the image's DICOM modality."""
        result = self.run(image, question, pdc=pdc, refine=False, modality=modality, **gen)
        return IMCAnswer(result.question, result.answer, result.perception, result.calibration, result.pdc)

    def run(
        self,
        image: ImageInput,
        text: str,
        pdc: bool | None = None,
        refine: bool | None = None,
        restore: bool | None = None,
        modality: str | None = None,
        **gen: Any,
    ) -> IMCRun:
        """The whole method on one image and one text: encode, perceive, (restore), calibrate, refine, answer.

        Args:
            image: the image.
            text: the question (or clinical text) as given.
            pdc: calibrate flagged images (default: the pipeline's setting).
            refine: refine the text with SMS (default: when the pipeline has a refiner).
            restore: restore flagged images before the answer (default: the restorer's ``enabled``).
            modality: the image's DICOM modality, where known: the perceiver checks the bank has reference
                images of it and gives no probability to noises its acquisition cannot make.
            **gen: generation options (``max_new_tokens`` ...).

        Returns:
            Every intermediate result.
        """
        use_pdc = self.pdc if pdc is None else pdc
        use_refine = self.refiner is not None if refine is None else refine
        use_restore = self.restorer.enabled if restore is None else restore
        pending = self._refine_async(text) if use_refine else None
        features, perceptions = self.encode_and_perceive([image], modalities=[modality])
        perception = perceptions[0]
        restoration, seen = None, perception
        if use_restore:
            restored = self.restore_view(image, features, perception, modality)
            features, seen, restoration = restored.features, restored.perception, restored.restoration
        features, records = self.calibrate(features, [seen], pdc=use_pdc)
        refinement = None
        if pending is not None:
            with timed("refine"):  # the wait: the refinement ran beside the encode
                refinement = pending.result()
        question = refinement.text if refinement is not None else text
        answer = self.generate(features, question, **gen)
        logger.debug(
            "perceived %s (p_clean %.3f); %s",
            perception.noise or "clean",
            perception.p_clean,
            records[0].reason,
        )
        return IMCRun(
            text, refinement, question, features, perception, records[0], answer, use_pdc, restoration
        )

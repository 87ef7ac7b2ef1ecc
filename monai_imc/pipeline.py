"""IMCPipeline: image + question -> answer, with perception and calibration in between, all kept.

One vision pass per image: the features from ``encode_images`` feed the perceiver, the calibrator and
the answer. With PDC off, the answer is the plain model's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from monai_imc.calibrate import Calibration, PDCCalibrator, Variant
from monai_imc.models.base import ImageInput, VisionLanguageModel
from monai_imc.perceive import ArtifactPerceiver, Perception
from monai_imc.prototypes import PrototypeBank

logger = logging.getLogger(__name__)

__all__ = ["IMCAnswer", "IMCPipeline"]


@dataclass(frozen=True)
class IMCAnswer:
    """An answer and everything that led to it.

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


class IMCPipeline:
    """Perceive, calibrate and answer with one model and its prototype bank.

    Args:
        model: the multimodal LLM.
        bank: its prototype bank (checked against the model's fingerprint).
        pdc: calibrate flagged images (default on).
        variant: the calibration variant.
        check_bank: verify that the bank was built with ``model``.

    Example::

        pipeline = IMCPipeline(load_model(path), PrototypeBank.load(bank_dir))
        result = pipeline.answer(image, "Is there a pleural effusion?")
        result.answer, result.perception.noise, result.calibration.applied
    """

    def __init__(
        self,
        model: VisionLanguageModel,
        bank: PrototypeBank,
        pdc: bool = True,
        variant: Variant = "ridge",
        check_bank: bool = True,
    ) -> None:
        if check_bank:
            bank.check_model(model)
        self.model = model
        self.bank = bank
        self.pdc = pdc
        self.perceiver = ArtifactPerceiver(bank)
        self.calibrator = PDCCalibrator(bank, variant=variant)

    def answer(self, image: ImageInput, question: str, pdc: bool | None = None, **gen: Any) -> IMCAnswer:
        """Answer ``question`` about ``image``; ``pdc`` overrides the pipeline's setting for this call."""
        use_pdc = self.pdc if pdc is None else pdc
        features = self.model.encode_images([image])
        perception = self.perceiver.perceive(features, views=[image])[0]
        if use_pdc:
            features, records = self.calibrator.calibrate(features, [perception])
            calibration = records[0]
        else:
            calibration = Calibration(False, None, None, 0.0, self.calibrator.variant, "disabled")
        text = self.model.generate(features, question, **gen)
        logger.debug("perceived %s (p_clean %.3f); %s", perception.noise or "clean", perception.p_clean,
                     calibration.reason)
        return IMCAnswer(question, text, perception, calibration, use_pdc)

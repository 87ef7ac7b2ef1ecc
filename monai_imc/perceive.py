"""ArtifactPerceiver: which artifact the model's own vision features show, and how severe.

It reads the features the answer will use (no extra vision pass): each image's descriptor (mean and
standard deviation of its projector-input tokens) is standardised and compared with the prototype bank's
class means under the bank's shared covariance, a linear discriminant over the classes ``clean`` and
every (noise, severity). Summing the posterior over severities gives the noise type; its most likely
level is the severity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from monai_imc.models.base import VisionFeatures
from monai_imc.prototypes import CLEAN, PrototypeBank, descriptor

__all__ = ["ArtifactPerceiver", "Perception"]


@dataclass(frozen=True)
class Perception:
    """What the perceiver saw in one image.

    Attributes:
        noise: the most likely artifact, ``None`` when ``clean`` is most likely.
        severity: its most likely level (1..5), ``None`` when clean.
        p_clean: posterior probability of a clean image.
        probabilities: posterior of ``clean`` and of every noise (severities summed); sums to 1.
        confidence: the posterior of the most likely noise (or of ``clean``).
        flagged: the gate's decision: calibrate this image (``1 - p_clean`` reached the bank's threshold
            and the image lies within the bank's range).
        distance: squared Mahalanobis distance of the image's descriptor to the nearest class, per
            dimension (about 1 for images like the bank's).
        in_range: ``distance`` is within the bank's range (:attr:`PrototypeBank.range_threshold`); an image
            outside it (another modality, another kind of picture) is never calibrated.
    """

    noise: str | None
    severity: int | None
    p_clean: float
    probabilities: Mapping[str, float]
    confidence: float
    flagged: bool
    distance: float = 0.0
    in_range: bool = True

    @property
    def artifact_probability(self) -> float:
        """``1 - p_clean``: the probability that some artifact is present."""
        return 1.0 - self.p_clean


class ArtifactPerceiver:
    """Perceive artifact type and severity from vision features with a :class:`PrototypeBank`.

    Args:
        bank: the model's prototype bank.
        gate_threshold: override the bank's clean-gate threshold (``1 - p_clean`` needed to flag).

    Example::

        features = model.encode_images(images)
        perceptions = ArtifactPerceiver(bank).perceive(features)
    """

    def __init__(self, bank: PrototypeBank, gate_threshold: float | None = None) -> None:
        self.bank = bank
        self.gate_threshold = bank.gate_threshold if gate_threshold is None else float(gate_threshold)
        t = bank.tensors
        self._center, self._scale = t["descriptor_center"], t["descriptor_scale"]
        self._means, self._precision = t["class_means"], t["precision"]
        # Linear discriminant: score_k(z) = z' P m_k - m_k' P m_k / 2 + log prior_k (shared covariance).
        # Priors: "clean" and every noise equally likely, a noise's prior split over its severities.
        n_types, n_sev = len(bank.noises) + 1, len(bank.severities)
        prior = torch.full((len(bank.classes),), 1.0 / (n_types * n_sev))
        prior[0] = 1.0 / n_types
        self._weights = self._means @ self._precision
        self._offsets = -0.5 * (self._weights * self._means).sum(dim=1) + prior.log()
        self._mean_norms = (self._weights * self._means).sum(dim=1)
        self.range_threshold = bank.range_threshold

    def standardised(self, tokens: torch.Tensor) -> torch.Tensor:
        """One image's standardised descriptor (the perceiver's input)."""
        d = descriptor(tokens.detach().to("cpu"))
        if d.shape[0] != self._center.shape[0]:
            raise ValueError(
                f"features of width {tokens.shape[-1]} do not fit a bank built on width {self._center.shape[0] // 2}"
            )
        return (d - self._center) / self._scale

    def class_posteriors(self, tokens: torch.Tensor) -> torch.Tensor:
        """Posterior over :attr:`PrototypeBank.classes` for one image's tokens ``(n_tokens, dim)``."""
        return torch.softmax(self._weights @ self.standardised(tokens) + self._offsets, dim=0)

    def distance(self, tokens: torch.Tensor) -> float:
        """Squared Mahalanobis distance (bank covariance) of the descriptor to the nearest class, per dimension."""
        z = self.standardised(tokens)
        squared = float(z @ self._precision @ z) + float((self._mean_norms - 2.0 * (self._weights @ z)).min())
        return max(0.0, squared) / z.shape[0]

    def perceive_tokens(self, tokens: torch.Tensor) -> Perception:
        """The :class:`Perception` of one image's tokens."""
        post = self.class_posteriors(tokens)
        bank = self.bank
        n_sev = len(bank.severities)
        per_noise = post[1:].reshape(len(bank.noises), n_sev)
        probabilities = {CLEAN: float(post[0])}
        probabilities.update({n: float(per_noise[i].sum()) for i, n in enumerate(bank.noises)})
        p_clean = probabilities[CLEAN]
        best = max(probabilities, key=probabilities.__getitem__)
        distance = self.distance(tokens)
        in_range = self.range_threshold is None or distance <= self.range_threshold
        flagged = (1.0 - p_clean) >= self.gate_threshold and in_range
        if best == CLEAN:
            return Perception(None, None, p_clean, probabilities, p_clean, flagged, distance, in_range)
        row = bank.noises.index(best)
        severity = bank.severities[int(per_noise[row].argmax())]
        return Perception(best, severity, p_clean, probabilities, probabilities[best], flagged, distance, in_range)

    def perceive(self, features: VisionFeatures) -> list[Perception]:
        """One :class:`Perception` per image of ``features``."""
        return [self.perceive_tokens(tokens) for tokens in features.tokens]

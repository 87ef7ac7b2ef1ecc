"""ArtifactPerceiver: is the image clean, which artifact does it carry and how badly, or can it not tell?

It reads the features the answer will use (no extra vision pass) and, when it is given the view the model
was shown, cheap physics measures of that view (:mod:`monai_imc.quality`). The fused descriptor (mean and
standard deviation of the projector-input tokens, and the measures) is standardised and classified by the
bank's linear discriminant over ``clean`` and every (noise, severity). Three verdicts:

- ``"not assessable"``: the view is degenerate (constant, tiny, NaN, a single row ...), smaller than the
  bank's reference views, of a modality the bank has no reference images of (where the bank records its
  modalities and the caller knows the view's), the features are not finite, or the descriptor lies
  outside the bank's range (another kind of picture). It claims no
  artifact and nothing is calibrated; the reason is kept for the SR.
- ``"artifact"``: the probability of an artifact reached the clean gate (calibrated on clean validation
  images). Where the DICOM modality is known, the noises its acquisition cannot make (low dose in an MR,
  Rician noise in a CT: the noise's ``dicom_modalities``) get no probability. The gate reads the artifacts at the bank's gate level or above (level 2 where validation chose
  it: the faintest level of every noise looks like a clean image), or ``1 - p_clean``. The noise type is
  the most likely one (severities summed), the severity its posterior-mean level, the confidence that
  type's posterior.
- ``"clean"``: otherwise; the confidence is one minus the gate's probability.

Without views it falls back to the bank's token-only discriminant (a bank built before the measures has
only that one).

The physics measures read only the view, not the features: :meth:`ArtifactPerceiver.measure_async` starts
them in the worker process beside the encode (:func:`monai_imc.workers.beside`: no GIL shared with the
model) so that they run while the model encodes the same view, and :meth:`ArtifactPerceiver.perceive` takes their
result (``measured``).
:meth:`monai_imc.pipeline.IMCPipeline.encode_and_perceive` is the one place that does both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from monai_imc.discriminant import LinearDiscriminant
from monai_imc.models.base import ImageInput, VisionFeatures
from monai_imc.perceiver_choice import gate_probability
from monai_imc.prototypes import CLEAN, PrototypeBank, descriptor
from monai_imc.quality import (
    MEASURES,
    assessability,
    measure_view,
    measure_views,
    measures_and_vector,
    warm_up,
)
from monai_imc.workers import BESIDE_ENCODE, beside

__all__ = [
    "ARTIFACT",
    "CLEAN_VERDICT",
    "NOT_ASSESSABLE",
    "ArtifactPerceiver",
    "Measured",
    "Perception",
    "measure_view",
    "warm_up_measures_worker",
]

CLEAN_VERDICT = "clean"
ARTIFACT = "artifact"
NOT_ASSESSABLE = "not assessable"


Measured = tuple[dict[str, float], np.ndarray] | None
"""The physics measures of one view, by name and as the descriptor's vector
(:func:`~monai_imc.quality.measures_and_vector`); ``None`` for a view that cannot be measured."""


def warm_up_measures_worker() -> Future[None]:
    """Start the worker process beside the encode and run every measure once there
    (:func:`monai_imc.quality.warm_up`), beside the caller: while the model loads, so that the first image's
    measures do not wait for the process to start (about 0.2 s)."""
    return beside(BESIDE_ENCODE, warm_up)


@dataclass(frozen=True)
class Perception:
    """What the perceiver saw in one image.

    Attributes:
        noise: the artifact found, ``None`` unless the verdict is ``"artifact"``.
        severity: its level (1..5), ``None`` unless the verdict is ``"artifact"``.
        p_clean: posterior probability of a clean image (0 when not assessable).
        probabilities: posterior of ``clean`` and of every noise (severities summed); empty when not assessable.
        confidence: the posterior of the reported finding (the noise, or ``clean``); 0 when not assessable.
        flagged: calibrate this image (the verdict is ``"artifact"``).
        distance: squared Mahalanobis distance of the descriptor to the nearest class, per dimension.
        in_range: ``distance`` is within the bank's range.
        verdict: ``"clean"``, ``"artifact"`` or ``"not assessable"``.
        reason: why it is not assessable (``None`` otherwise).
        measures: the physics measures of the view, when a view was given and could be measured.
        descriptor: ``"fused"`` (tokens and measures) or ``"tokens"``: the discriminant used; ``"given"`` for
            a perception told rather than perceived (:meth:`given`).
        p_artifact: the probability the clean gate reads: of an artifact at the bank's gate level or
            above (``None``: ``1 - p_clean``, a bank whose gate reads every level).
    """

    noise: str | None
    severity: int | None
    p_clean: float
    probabilities: Mapping[str, float]
    confidence: float
    flagged: bool
    distance: float = 0.0
    in_range: bool = True
    verdict: str = CLEAN_VERDICT
    reason: str | None = None
    measures: Mapping[str, float] | None = None
    descriptor: str = "tokens"
    p_artifact: float | None = None

    @classmethod
    def given(cls, noise: str | None, severity: int | None = None) -> Perception:
        """A perception told rather than perceived (the oracle): ``noise`` at ``severity`` with certainty,
        or a clean image for ``None`` / ``"clean"``.

        :meth:`~monai_imc.pipeline.IMCPipeline.calibrate` treats it like any perception, so the oracle
        calibration runs the same calibration step as the method.

        Raises:
            ValueError: a noise without a severity in 1..5.
        """
        if noise is None or noise == CLEAN:
            return cls(None, None, 1.0, {CLEAN: 1.0}, 1.0, False, descriptor="given")
        if severity is None or not 1 <= severity <= 5:
            raise ValueError(f"a given noise {noise!r} needs a severity in 1..5, got {severity!r}")
        return cls(noise, int(severity), 0.0, {noise: 1.0}, 1.0, True, verdict=ARTIFACT, descriptor="given")

    @property
    def artifact_probability(self) -> float:
        """The probability of an artifact the clean gate reads (0 when not assessable): of one at the
        bank's gate level or above, ``1 - p_clean`` where the gate reads every level."""
        if self.verdict == NOT_ASSESSABLE:
            return 0.0
        return 1.0 - self.p_clean if self.p_artifact is None else self.p_artifact

    @property
    def assessable(self) -> bool:
        """Whether the perceiver could judge the image."""
        return self.verdict != NOT_ASSESSABLE

    @property
    def summary(self) -> str:
        """One plain line: ``no artifact detected``, ``motion artifact, severity 4 ...`` or ``not assessable: ...``."""
        if self.verdict == NOT_ASSESSABLE:
            return f"not assessable: {self.reason}"
        if self.verdict == ARTIFACT:
            return f"{self.noise} artifact, severity {self.severity} of 5 (confidence {self.confidence:.2f})"
        return f"no artifact detected (confidence {self.confidence:.2f})"


@dataclass(frozen=True)
class _Discriminant:
    name: str
    lda: LinearDiscriminant
    gate: float
    range: float | None
    gate_min_severity: int = 1


def _unassessable(reason: str, descriptor_name: str, distance: float = 0.0) -> Perception:
    return Perception(
        None, None, 0.0, {}, 0.0, False, distance, False, NOT_ASSESSABLE, reason, None, descriptor_name
    )


#: A view whose longer side is below this share of the bank's typical (median) reference view's is not
#: assessable: the tower sees an upsampled thumbnail as blurred and blocky.
SMALLEST_VIEW_FRACTION = 0.75

#: DICOM modalities that show the same kind of picture (projection radiographs), for the modality check.
_SAME_KIND = {"DX": "CR", "RG": "CR", "PX": "CR"}


def _modality_kind(modality: str) -> str:
    code = modality.strip().upper()
    return _SAME_KIND.get(code, code)


class ArtifactPerceiver:
    """Perceive clean / artifact (type, severity, confidence) / not assessable with a :class:`PrototypeBank`.

    Args:
        bank: the model's prototype bank.
        gate_threshold: override the bank's clean gate (the :attr:`Perception.artifact_probability` needed
            to report an artifact).

    Example::

        features = model.encode_images(views)
        perceptions = ArtifactPerceiver(bank).perceive(features, views=views)
        perceptions[0].verdict, perceptions[0].summary
    """

    def __init__(self, bank: PrototypeBank, gate_threshold: float | None = None) -> None:
        self.bank = bank
        self.gate_threshold = None if gate_threshold is None else float(gate_threshold)
        t = bank.tensors
        self._center, self._scale = t["descriptor_center"].float(), t["descriptor_scale"].float()
        # the measures the bank was built with, in its order (a bank of an earlier release has fewer)
        self.measure_names: tuple[str, ...] = tuple(bank.manifest.get("measures") or MEASURES)
        self._found: dict[str, _Discriminant] = {}
        self._impossible: dict[str, list[str]] = {}  # modality kind -> noises it cannot make
        perceivers = bank.manifest.get("choices", {}).get("perceivers")
        if perceivers:
            for name, choice in perceivers.items():
                lda = LinearDiscriminant.from_tensors(t, f"perceiver.{name}")
                self._found[name] = _Discriminant(
                    name,
                    lda,
                    float(choice["gate_threshold"]),
                    choice.get("range_threshold"),
                    int(choice.get("gate_min_severity", 1)),
                )
        else:  # a bank built before the physics measures: one token discriminant, uniform type prior
            n_types, n_sev = len(bank.noises) + 1, len(bank.severities)
            prior = torch.full((len(bank.classes),), 1.0 / (n_types * n_sev))
            prior[0] = 1.0 / n_types
            mask = torch.ones(self._center.shape[0], dtype=torch.bool)
            lda = LinearDiscriminant(mask, t["class_means"].float(), t["precision"].float(), prior.log())
            self._found["tokens"] = _Discriminant("tokens", lda, bank.gate_threshold, bank.range_threshold)

    @property
    def uses_measures(self) -> bool:
        """Whether the bank has a fused (tokens and physics measures) discriminant."""
        return "fused" in self._found

    def measure_async(self, views: Sequence[ImageInput]) -> Future[list[Measured]] | None:
        """Start the physics measures of ``views`` in the worker process beside the encode
        (:func:`~monai_imc.workers.beside`); ``None`` when this perceiver reads no measures. Pass the future's
        result to :meth:`perceive` (``measured``)."""
        if not self.uses_measures:
            return None
        return beside(BESIDE_ENCODE, measure_views, [np.asarray(v) for v in views], self.measure_names)

    @property
    def range_threshold(self) -> float | None:
        """The range of the discriminant used with views (the fused one when the bank has it)."""
        return self._pick(True).range

    def _pick(self, with_view: bool) -> _Discriminant:
        if with_view and "fused" in self._found:
            return self._found["fused"]
        return self._found.get("tokens") or next(iter(self._found.values()))

    def standardised(
        self, tokens: torch.Tensor, view: ImageInput | None = None, measured: np.ndarray | None = None
    ) -> torch.Tensor:
        """One image's standardised descriptor ``(dim,)``: tokens, then the measures of ``view`` (or the
        vector ``measured`` of them; zeros, the bank's mean, where neither is given: only the fused
        discriminant reads them)."""
        return self._standardise(descriptor(tokens.detach().to("cpu")), view, measured)

    def _standardise(
        self, d: torch.Tensor, view: ImageInput | None = None, measured: np.ndarray | None = None
    ) -> torch.Tensor:
        """:meth:`standardised` of the token descriptor ``d`` (:func:`~monai_imc.prototypes.descriptor`)."""
        width = self._center.shape[0]
        n_measures = width - d.shape[0]
        if n_measures not in (0, len(self.measure_names)):
            raise ValueError(
                f"features of width {d.shape[0] // 2} do not fit a bank built on a descriptor of width {width}"
            )
        z_tokens = (d - self._center[: d.shape[0]]) / self._scale[: d.shape[0]]
        projection = self.bank.tensors.get("descriptor_projection")
        if projection is not None:  # a wide tower's token statistics, on the bank's principal components
            z_tokens = z_tokens @ projection.float()
        if n_measures == 0:
            return z_tokens
        if measured is None and view is None:
            return torch.cat([z_tokens, torch.zeros(n_measures)])
        if measured is None:
            measured = measures_and_vector(np.asarray(view), self.measure_names)[1]
        m = torch.from_numpy(measured)
        return torch.cat([z_tokens, (m - self._center[d.shape[0] :]) / self._scale[d.shape[0] :]])

    def class_posteriors(self, tokens: torch.Tensor, view: ImageInput | None = None) -> torch.Tensor:
        """Posterior over :attr:`PrototypeBank.classes` for one image's tokens ``(n_tokens, dim)``."""
        return self._pick(view is not None).lda.posteriors(self.standardised(tokens, view)[None])[0]

    def distance(self, tokens: torch.Tensor, view: ImageInput | None = None) -> float:
        """Squared Mahalanobis distance of the descriptor to the nearest class, per dimension."""
        return float(self._pick(view is not None).lda.distances(self.standardised(tokens, view)[None])[0])

    def modality_reason(self, modality: str | None) -> str | None:
        """Why a view of DICOM ``modality`` cannot be assessed with this bank, or ``None`` when it can.

        A bank that records the modalities of its reference images (``manifest["modalities"]``) has no
        clean statistics of any other (an ultrasound's speckle is not Rician noise); CR, DX and other
        projection radiographs count as one kind. Unknown modality or no record: no objection.
        """
        known = self.bank.manifest.get("modalities")
        if not known or not modality or not modality.strip():
            return None
        if _modality_kind(modality) in {_modality_kind(m) for m in known}:
            return None
        return (
            f"modality {modality.strip().upper()} is not among the prototype bank's reference images "
            f"({', '.join(known)})"
        )

    def impossible_noises(self, modality: str | None) -> list[str]:
        """The bank's noises that the acquisition of DICOM ``modality`` cannot make (the noise's
        ``dicom_modalities``: low dose is an X-ray artifact, Rician noise and k-space spikes are MR ones);
        none for an unknown modality. The perceiver gives them no probability for such an image."""
        if not modality or not modality.strip():
            return []
        kind = _modality_kind(modality)
        if kind not in self._impossible:  # once per modality: the perceiver runs per image
            from monai_imc.noise import get_noise

            out = []
            for name in self.bank.noises:
                try:
                    allowed = getattr(get_noise(name).transform, "dicom_modalities", ())
                except ValueError:  # a noise this release does not know: no restriction
                    continue
                if allowed and kind not in {_modality_kind(m) for m in allowed}:
                    out.append(name)
            self._impossible[kind] = out
        return list(self._impossible[kind])

    def _within_modality(self, scores: torch.Tensor, modality: str) -> torch.Tensor:
        """The class scores with the noises ``modality`` cannot make ruled out (their softmax is 0)."""
        impossible = self.impossible_noises(modality)
        if not impossible:
            return scores
        n_sev = len(self.bank.severities)
        out = scores.clone()
        for name in impossible:
            i = self.bank.noises.index(name)
            out[1 + i * n_sev : 1 + (i + 1) * n_sev] = float("-inf")
        return out

    def perceive_tokens(
        self,
        tokens: torch.Tensor,
        view: ImageInput | None = None,
        modality: str | None = None,
        measured: Measured = None,
    ) -> Perception:
        """The :class:`Perception` of one image's tokens and, optionally, the view the model was shown, its
        DICOM modality and its physics measures already computed (:func:`measure_view`; computed here when
        ``None``)."""
        chosen = self._pick(view is not None)
        modality_reason = self.modality_reason(modality)
        if modality_reason is not None:
            return _unassessable(modality_reason, chosen.name)
        if view is not None:
            reason = assessability(np.asarray(view))
            if reason is not None:
                return _unassessable(f"degenerate image: {reason}", chosen.name)
            sides = self.bank.manifest.get("view_sides", {})
            # a view's scale is its longer side: a wide view (146 x 256) is as detailed as the bank's
            # 256 x 256 ones; banks saved before the longer sides were recorded give their typical
            # shorter side, which for their (mostly square) views is the same size
            typical = sides.get("long_median") or sides.get("median") or sides.get("min")
            side = max(np.asarray(view).shape[:2])
            if typical and side < SMALLEST_VIEW_FRACTION * typical:
                # the physics measures and token statistics of an upsampled thumbnail are not those of
                # the images the bank describes: say so instead of reading its blockiness as an artifact
                return _unassessable(
                    f"smaller ({side} px) than the images the prototype bank was built from (typically {typical:.0f} px)",
                    chosen.name,
                )
        d = descriptor(tokens.detach().to("cpu"))
        if not bool(torch.isfinite(d).all()):  # a NaN or infinite token leaves its moments non-finite
            return _unassessable("the model's image features are not finite", chosen.name)
        measures, vector = None, None
        if view is not None and self.uses_measures:
            if measured is None:
                measured = measures_and_vector(np.asarray(view), self.measure_names)
            measures, vector = measured
        z = self._standardise(d, view if vector is not None else None, vector)
        if not bool(torch.isfinite(z).all()):
            return _unassessable("the image's measures are not finite", chosen.name)
        distance = float(chosen.lda.distances(z[None])[0])
        if chosen.range is not None and distance > chosen.range:
            return _unassessable(
                f"outside the prototype bank's range (distance {distance:.2f} > {chosen.range:.2f}): "
                "not like the images the bank was built from",
                chosen.name,
                distance,
            )
        scores = chosen.lda.scores(z[None])[0]
        bank = self.bank
        if modality is not None:
            scores = self._within_modality(scores, modality)
        post = torch.softmax(scores, dim=0)
        n_sev = len(bank.severities)
        per_noise = post[1:].reshape(len(bank.noises), n_sev)
        probabilities = {CLEAN: float(post[0])}
        probabilities.update({n: float(per_noise[i].sum()) for i, n in enumerate(bank.noises)})
        p_clean = probabilities[CLEAN]
        # the gate reads the artifacts at its level or above: the faintest level of every noise is, on
        # clean validation images, too like a clean image to tell apart (the bank chose the level)
        p_artifact = float(gate_probability(post[None], bank.severities, chosen.gate_min_severity)[0])
        gate = chosen.gate if self.gate_threshold is None else self.gate_threshold
        if p_artifact < gate:
            return Perception(
                None,
                None,
                p_clean,
                probabilities,
                1.0 - p_artifact,
                False,
                distance,
                True,
                CLEAN_VERDICT,
                None,
                measures,
                chosen.name,
                p_artifact,
            )
        best = max(bank.noises, key=probabilities.__getitem__)
        row = per_noise[bank.noises.index(best)]
        levels = torch.tensor(bank.severities, dtype=row.dtype)
        expected = float((row * levels).sum() / row.sum().clamp_min(1e-12))
        severity = min(bank.severities, key=lambda s: abs(s - expected))
        return Perception(
            best,
            severity,
            p_clean,
            probabilities,
            probabilities[best],
            True,
            distance,
            True,
            ARTIFACT,
            None,
            measures,
            chosen.name,
            p_artifact,
        )

    def perceive(
        self,
        features: VisionFeatures,
        views: Sequence[ImageInput | None] | None = None,
        modalities: Sequence[str | None] | None = None,
        measured: Sequence[Measured] | None = None,
    ) -> list[Perception]:
        """One :class:`Perception` per image of ``features``.

        Args:
            features: the model's features of the images (one vision pass).
            views: the images exactly as given to ``encode_images`` (optional): with them the perceiver
                adds the physics measures and tells degenerate images apart.
            modalities: the DICOM modality of each image, where known (see :meth:`modality_reason`).
            measured: the views' physics measures, already computed (:meth:`measure_async`); computed
                here when not given.

        Raises:
            ValueError: ``views``, ``modalities`` or ``measured`` does not have one entry per image.
        """
        n = features.num_images
        for name, given in (("views", views), ("modalities", modalities), ("measured", measured)):
            if given is not None and len(given) != n:
                raise ValueError(f"{len(given)} {name} for {n} images")
        views_ = list(views) if views is not None else [None] * n
        kinds = list(modalities) if modalities is not None else [None] * n
        known = list(measured) if measured is not None else [None] * n
        return [
            self.perceive_tokens(tokens, view, modality, m)
            for tokens, view, modality, m in zip(features.tokens, views_, kinds, known)
        ]

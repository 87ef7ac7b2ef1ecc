"""PDCCalibrator: prototype-guided calibration of vision features toward the clean ones.

For an image the perceiver flags, the tokens the projector receives are moved toward their clean
counterparts with the bank's map for the perceived noise, scaled by the strength chosen on validation
for that severity and by the perceiver's confidence. An image the gate calls clean passes unchanged, and so does an image the perceiver cannot assess
(degenerate, or outside the bank's range).

The variants (``docs/method.md`` compares them; ``"auto"`` picks ``"answer"`` where the bank has its maps, else ``"ridge"``):

- ``"ridge"`` (default): ``x + s * (x B_n + c_n)``, a per-noise linear map of every token fitted in closed
  form (ridge regression of clean - noisy on noisy tokens) on the bank's token pairs; for wide tokens
  (a bank's ``ridge_basis`` U, the leading directions of the noisy tokens) the map lives in that span:
  ``x + s * ((x U) B_n + c_n) U^T``;
- ``"shift"``: ``x - s * shift_{n,k}``, the bank's mean shift of each token (of the pooled feature where
  the token grid is not fixed) for noise ``n`` at severity ``k``;
- ``"answer"``: ``x + s * ((x V) A_{n,k} + c_{n,k}) L``, per noise and severity an affine map of the
  projector's reading space ``V`` fitted on the model's own answers (:mod:`monai_imc.answer_maps`), ``L``
  the smallest token change the projector reads as that move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from monai_imc.models.base import VisionFeatures
from monai_imc.perceive import Perception
from monai_imc.prototypes import PrototypeBank

__all__ = ["VARIANTS", "Calibration", "PDCCalibrator", "calibrate_tokens"]

Variant = Literal["ridge", "shift", "answer", "auto"]
VARIANTS: tuple[str, ...] = ("ridge", "shift", "answer", "auto")


@dataclass(frozen=True)
class Calibration:
    """What the calibrator did to one image.

    Attributes:
        applied: whether the features were changed.
        noise: the noise calibrated for (``None`` when not applied).
        severity: the severity calibrated for.
        strength: the effective strength (validation strength x confidence), 0 when not applied.
        variant: ``"ridge"``, ``"shift"`` or ``"answer"``.
        reason: why (``"calibrated"``, ``"gate: clean"``, ``"disabled"`` ...).
        shift_norm: mean L2 norm of the change per token.
    """

    applied: bool
    noise: str | None
    severity: int | None
    strength: float
    variant: str
    reason: str
    shift_norm: float = 0.0


def calibrate_tokens(
    bank: PrototypeBank, tokens: torch.Tensor, noise: str, severity: int, strength: float, variant: Variant = "ridge"
) -> torch.Tensor:
    """Move one image's tokens ``(n_tokens, dim)`` toward clean for ``noise`` at ``severity``.

    Raises:
        ValueError: unknown noise or variant, or tokens that do not fit the bank.
    """
    if noise not in bank.noises:
        raise ValueError(f"the bank has no noise {noise!r}; it knows {bank.noises}")
    row = bank.noises.index(noise)
    col = bank.severities.index(severity) if severity in bank.severities else 0
    x = tokens.float()
    if variant == "ridge":
        maps = bank.tensors["ridge_maps"][row].to(x.device)
        basis = bank.tensors.get("ridge_basis")
        width = maps.shape[1] if basis is None else basis.shape[0]
        if width != x.shape[1]:
            raise ValueError(f"tokens of width {x.shape[1]} do not fit a bank of width {width}")
        if basis is None:
            delta = x @ maps[:-1] + maps[-1]
        else:  # a low-rank map: fitted and applied in the span of the bank's tokens, the rest untouched
            basis = basis.to(x.device)
            delta = _affine_move(x, maps, basis, basis.T)
    elif variant == "answer":
        if "answer_maps" not in bank.tensors:
            raise ValueError("the bank has no answer-fitted maps (monai-imc prototypes fit-answers)")
        maps = bank.tensors["answer_maps"][row, col].to(x.device)
        basis, lift = bank.tensors["answer_basis"].to(x.device), bank.tensors["answer_lift"].to(x.device)
        if basis.shape[0] != x.shape[1]:
            raise ValueError(f"tokens of width {x.shape[1]} do not fit a bank of width {basis.shape[0]}")
        delta = _affine_move(x, maps, basis, lift)
    elif variant == "shift":
        token_shift = bank.tensors.get("token_shift")
        if token_shift is not None and token_shift.shape[2] == x.shape[0]:
            delta = -token_shift[row, col].to(x.device)
        else:
            delta = -bank.tensors["pooled_shift"][row, col].to(x.device).expand_as(x)
    else:
        raise ValueError(f"unknown calibration variant {variant!r} for tokens; use 'ridge', 'shift' or 'answer'")
    return (x + float(strength) * delta).to(tokens.dtype)


def _affine_move(x: torch.Tensor, maps: torch.Tensor, basis: torch.Tensor, lift: torch.Tensor) -> torch.Tensor:
    """The token change of an affine map ``(r + 1, r)`` (bias last) acting in a space read as ``x @ basis``
    and written back as ``@ lift`` (the ridge maps' span and the projector's reading space alike)."""
    return ((x @ basis) @ maps[:-1] + maps[-1]) @ lift


class PDCCalibrator:
    """Calibrate vision features given the perceiver's verdicts.

    Args:
        bank: the model's prototype bank.
        variant: ``"ridge"``, ``"shift"``, ``"answer"`` (the bank must hold answer-fitted maps) or ``"auto"``
            (``"answer"`` where the bank holds them, else ``"ridge"``; :attr:`variant` is the one resolved).
        use_confidence: scale the strength by the perceiver's confidence.
    """

    def __init__(self, bank: PrototypeBank, variant: Variant = "ridge", use_confidence: bool = True) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown calibration variant {variant!r}; use one of {VARIANTS}")
        if variant == "auto":  # the bank's best maps: fitted on the answers where it has them
            variant = "answer" if "answer_maps" in bank.tensors else "ridge"
        if variant == "answer" and "answer_maps" not in bank.tensors:
            raise ValueError("calibration variant 'answer' needs a bank with answer-fitted maps "
                             "(monai-imc prototypes fit-answers)")
        self.bank = bank
        self.variant: Variant = variant
        self.use_confidence = use_confidence

    def calibrate(
        self, features: VisionFeatures, perceptions: Sequence[Perception]
    ) -> tuple[VisionFeatures, list[Calibration]]:
        """Return calibrated features (the same object when nothing changes) and one record per image.

        Raises:
            ValueError: the number of perceptions differs from the number of images.
        """
        if len(perceptions) != features.num_images:
            raise ValueError(f"{len(perceptions)} perceptions for {features.num_images} images")
        tokens, records = [], []
        for t, p in zip(features.tokens, perceptions):
            if not p.assessable:  # degenerate, or outside the bank's range: never calibrated
                tokens.append(t)
                records.append(Calibration(False, None, None, 0.0, self.variant, f"not assessable: {p.reason}"))
                continue
            if not p.flagged or p.noise is None or p.severity is None:
                tokens.append(t)
                records.append(Calibration(False, None, None, 0.0, self.variant, "gate: clean"))
                continue
            strength = self.bank.strength(p.noise, p.severity, self.variant) * (p.confidence if self.use_confidence else 1.0)
            if strength <= 0.0:
                floor = self.bank.calibrates_from(self.variant)
                reason = (f"level {p.severity} is below the level PDC calibrates from ({floor})" if p.severity < floor
                          else "strength 0 on validation")
                tokens.append(t)
                records.append(Calibration(False, p.noise, p.severity, 0.0, self.variant, reason))
                continue
            new = calibrate_tokens(self.bank, t, p.noise, p.severity, strength, self.variant)
            norm = float((new.float() - t.float()).norm(dim=-1).mean())
            tokens.append(new)
            records.append(Calibration(True, p.noise, p.severity, strength, self.variant, "calibrated", norm))
        if not any(r.applied for r in records):
            return features, records
        return features.with_tokens(tokens), records

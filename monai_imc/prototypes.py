"""PrototypeBank: what the model's own vision features look like, clean and under each artifact.

Built once per model (by :func:`monai_imc.bank_build.build_bank`), training-free (no weight changes), from
clean reference images and their noisy copies (every image noise x severity of :mod:`monai_imc.noise`), all
through the model's own :meth:`~monai_imc.models.base.VisionLanguageModel.encode_images`:

- **perceiver statistics**: a descriptor per image (mean and standard deviation of its vision tokens over
  the token axis, and the physics measures of :mod:`monai_imc.quality`), standardised, and linear
  discriminants over clean and every (noise, severity) (see :mod:`monai_imc.discriminant`): one on the
  fused descriptor (used when the perceiver is given the views), one on the tokens alone;
- **calibration statistics**: per (noise, severity) the mean shift of the pooled features and, where the
  token grid is fixed, of every token; per noise a ridge map from noisy tokens to their clean
  counterparts, fitted in closed form on token pairs (see ``docs/method.md``);
- **choices made on a validation split** of the reference images: the strength of each noise's
  calibration per severity and the clean-gate threshold.

A bank is saved as ``bank.safetensors`` plus ``manifest.json`` (model fingerprint, noise parameters,
seeds, images). Loading it for another model is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from monai_imc.atomic import atomic_output
from monai_imc.discriminant import LinearDiscriminant
from monai_imc.models.base import ImageInput, VisionLanguageModel
from monai_imc.noise import get_noise

logger = logging.getLogger(__name__)

__all__ = [
    "BANK_FILE",
    "MANIFEST_FILE",
    "BankMismatchError",
    "PrototypeBank",
    "corrupt",
    "descriptor",
    "from_level_choice",
    "model_fingerprint",
    "reader_fingerprint",
    "strength_tensor",
    "variant_seed",
]

BANK_FILE = "bank.safetensors"
MANIFEST_FILE = "manifest.json"
CLEAN = "clean"


class BankMismatchError(ValueError):
    """The bank was built with another model (its fingerprint differs)."""


def descriptor(tokens: torch.Tensor) -> torch.Tensor:
    """The perceiver's descriptor of one image: per-dimension mean and std of its tokens, ``(2 * dim,)``."""
    t = tokens.float()
    # the two moments as matrix products: torch's per-dimension reductions are ten times slower on CPU for
    # a (tokens, dim) matrix, and the perceiver runs once per image on the answer's path (two passes, so
    # the variance does not lose its digits to a large mean)
    weights = torch.full((1, t.shape[0]), 1.0 / t.shape[0], dtype=t.dtype)
    mean = (weights @ t)[0]
    centred = t - mean
    return torch.cat([mean, (weights @ (centred * centred))[0].sqrt()])


def _weights_digest(named: Any) -> str:
    """SHA-256 of ``(name, tensor)`` pairs: names, shapes and values rounded to bfloat16 (so one checkpoint
    gives one digest in float32 on a CPU and in bfloat16 on a GPU)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named, key=lambda item: item[0]):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        if tensor.is_floating_point():
            digest.update(tensor.detach().to("cpu", torch.bfloat16).view(torch.int16).numpy().tobytes())
        else:
            digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def reader_fingerprint(model: VisionLanguageModel) -> str:
    """What reads the vision tokens: SHA-256 of the model's projector weights, hashed as
    :func:`model_fingerprint` hashes the tower.

    The maps ``monai-imc prototypes fit-answers`` fits live in the projector's reading space and were fitted on
    that model's answers, so a bank records this beside them (``choices.answer_maps.reader_sha256``) and
    :meth:`PrototypeBank.check_model` refuses a model whose projector differs (the same tower, retrained or
    fine-tuned behind it). The projector alone, not the language model, so that the check stays cheap for a 7B
    model; a language model retrained behind an unchanged projector is not caught.
    """
    projector = getattr(model, "projector", None)
    if not isinstance(projector, torch.nn.Module):
        raise TypeError(f"{type(model).__name__} exposes no projector to fingerprint")
    return _weights_digest(projector.state_dict().items())


def model_fingerprint(model: VisionLanguageModel) -> dict[str, Any]:
    """What identifies the features a bank was built from: architecture, feature layer, vision weights.

    The hash covers the vision tower's parameter names, shapes and values rounded to bfloat16, so one
    checkpoint gives one fingerprint whether it runs in float32 on a CPU or in bfloat16 on a GPU.
    """
    hf_model = getattr(model, "model", None)
    config = getattr(hf_model, "config", None)
    tower = getattr(model, "vision_tower", None)
    if config is None or tower is None:
        raise TypeError(f"{type(model).__name__} exposes no HF model and vision tower to fingerprint")
    vision_weights = _weights_digest(tower.state_dict().items())
    architectures = getattr(config, "architectures", None) or [type(hf_model).__name__]
    layer = getattr(config, "vision_feature_layer", None)
    return {
        "architecture": str(architectures[0]),
        "family": str(getattr(config, "model_type", "")),
        "feature_layer": "projector input"
        + (f" (vision_feature_layer={layer})" if layer is not None else ""),
        "vision_weights_sha256": vision_weights,
    }


def to_hwc_uint8(image: ImageInput) -> np.ndarray:
    """An (H, W, C) uint8 copy of an image (PIL, or an (H, W[, C]) array scaled to 0..255)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        low, high = float(arr.min()), float(arr.max())
        arr = np.rint((arr - low) / max(high - low, 1e-6) * 255.0).astype(np.uint8)
    return arr


def corrupt(image: ImageInput, noise: str, severity: int, seed: int) -> np.ndarray:
    """An (H, W, C) uint8 copy of ``image`` with an image noise of the registry applied."""
    arr = to_hwc_uint8(image)
    noisy = get_noise(noise).apply(
        np.ascontiguousarray(np.moveaxis(arr, -1, 0)), severity=severity, seed=seed
    )
    return np.ascontiguousarray(np.moveaxis(noisy, 0, -1))


def variant_seed(seed: int, image_index: int, noise_index: int) -> int:
    """The seed of one image's copies under one noise: the same at every severity (nested levels)."""
    return int((seed * 1_000_003 + image_index * 7_919 + noise_index * 104_729) % (2**31 - 1))


@dataclass
class PrototypeBank:
    """Prototypes, perceiver statistics and calibration maps of one model (see the module docstring).

    Attributes:
        noises: the image noises the bank knows, in class order.
        severities: the severity levels it was built with.
        tensors: the statistics, by name (see :data:`TENSOR_DOC`).
        manifest: fingerprint, noise parameters, seeds, images, choices; saved as JSON.
    """

    noises: list[str]
    severities: list[int]
    tensors: dict[str, torch.Tensor]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[tuple[str, int]]:
        """The perceiver's classes: ``("clean", 0)`` then every ``(noise, severity)``."""
        return [(CLEAN, 0)] + [(n, s) for n in self.noises for s in self.severities]

    @property
    def gate_threshold(self) -> float:
        """Calibrate only when the perceived probability of an artifact, 1 - p_clean, reaches this."""
        return float(self.manifest["choices"]["gate_threshold"])

    @property
    def range_threshold(self) -> float | None:
        """The largest descriptor distance (per dimension, to the nearest class) of an image like the bank's.

        Chosen on the validation images; ``None`` for a bank built before it existed (no range check).
        """
        value = self.manifest.get("choices", {}).get("range_threshold")
        return None if value is None else float(value)

    def strength(self, noise: str, severity: int, variant: str = "ridge") -> float:
        """The calibration strength chosen on validation for ``noise`` at ``severity`` (of the answer-fitted
        maps with ``variant="answer"``, else of the ridge and shift variants)."""
        row = self.noises.index(noise)
        col = (
            self.severities.index(severity)
            if severity in self.severities
            else _nearest(self.severities, severity)
        )
        return float(self.tensors[strength_tensor(variant)][row, col])

    def calibrates_from(self, variant: str = "ridge") -> int:
        """The lowest perceived severity the variant's maps calibrate (levels below it have strength 0 by
        choice: ``bench/choose_pdc_strength.py --from-level``); 1 where the bank records no such level."""
        return int(self.manifest.get("choices", {}).get(from_level_choice(variant), 1))

    @property
    def bank_hash(self) -> str:
        """SHA-256 of the saved tensors (set by :meth:`save` and :meth:`load`)."""
        return str(self.manifest.get("bank_sha256", ""))

    def check_model(self, model: VisionLanguageModel) -> None:
        """Raise :class:`BankMismatchError` when ``model`` is not the model the bank was built with: another
        vision tower (:func:`model_fingerprint`), or, where the bank holds answer-fitted maps, another reader of
        the tokens than the one they were fitted on (:func:`reader_fingerprint`)."""
        expected = self.manifest.get("fingerprint", {})
        actual = model_fingerprint(model)
        differing = [k for k in expected if expected.get(k) != actual.get(k)]
        if differing:
            details = "; ".join(f"{k}: bank {expected.get(k)!r}, model {actual.get(k)!r}" for k in differing)
            raise BankMismatchError(f"prototype bank was built with another model ({details})")
        fitted_on = self.manifest.get("choices", {}).get("answer_maps", {}).get("reader_sha256")
        if "answer_maps" not in self.tensors or not fitted_on:
            return
        reader = reader_fingerprint(model)
        if fitted_on != reader:
            raise BankMismatchError(
                f"the prototype bank's answer-fitted maps were fitted on another projector (projector "
                f"{fitted_on[:12]}..., this model's {reader[:12]}...): fit them again for this model "
                "(monai-imc prototypes fit-answers) or use a bank without them")

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``bank.safetensors`` and ``manifest.json`` into ``directory`` (each atomically)."""
        out = Path(directory)
        with atomic_output(out / BANK_FILE) as tmp:
            save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(tmp))
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        self.manifest["bank_sha256"] = digest
        self.manifest["noises"] = self.noises
        self.manifest["severities"] = self.severities
        with atomic_output(out / MANIFEST_FILE) as tmp:
            tmp.write_text(json.dumps(self.manifest, indent=2, sort_keys=True))
        return out

    def without(self, noise: str) -> PrototypeBank:
        """A copy of the bank that does not know ``noise`` (for a leave-one-noise-out run).

        The noise's calibration maps, shifts and strengths and its perceiver classes (every severity) are
        dropped and the class priors renormalised (each remaining type alike, as a bank built without the
        noise has them). What was fitted on all classes together stays: the descriptor standardisation, the
        shared covariance of the discriminants, the clean gate and the range threshold. So this is the
        bank's knowledge without the noise's prototypes, not a rebuild without its images. The copy's
        ``bank_hash`` names the left-out noise, so cached answers of the full bank are not reused.

        Raises:
            ValueError: the bank does not know ``noise``, or it is its only noise.
        """
        if noise not in self.noises:
            raise ValueError(f"the bank has no noise {noise!r}; it knows {self.noises}")
        if len(self.noises) == 1:
            raise ValueError(f"cannot leave out {noise!r}: it is the bank's only noise")
        row, n_sev = self.noises.index(noise), len(self.severities)
        keep_rows = torch.tensor([i for i in range(len(self.noises)) if i != row])
        dropped = set(range(1 + row * n_sev, 1 + (row + 1) * n_sev))
        keep_classes = torch.tensor([k for k in range(len(self.classes)) if k not in dropped])
        tensors: dict[str, torch.Tensor] = {}
        for name, tensor in self.tensors.items():
            if name in _PER_NOISE:
                tensor = tensor[keep_rows]
            elif name == "class_means":  # a bank of the first format: one row per class
                tensor = tensor[keep_classes]
            tensors[name] = tensor.clone()
        for prefix in {name.rsplit(".", 1)[0] for name in self.tensors if name.endswith(".means")}:
            kept = LinearDiscriminant.from_tensors(self.tensors, prefix).keep_classes(keep_classes)
            tensors.update(kept.to_tensors(prefix))
        manifest = json.loads(json.dumps(self.manifest))
        manifest["left_out"] = [*manifest.get("left_out", []), noise]
        manifest["noises"] = [n for n in self.noises if n != noise]
        manifest["bank_sha256"] = hashlib.sha256(f"{self.bank_hash}|without:{noise}".encode()).hexdigest()
        return PrototypeBank(list(manifest["noises"]), list(self.severities), tensors, manifest)

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], model: VisionLanguageModel | None = None
    ) -> PrototypeBank:
        """Read a bank; with ``model``, refuse it unless it was built with that model.

        Raises:
            FileNotFoundError: a file of the bank is missing.
            ValueError: the tensors do not match the manifest's hash.
            BankMismatchError: the bank belongs to another model.
        """
        root = Path(directory)
        for name in (BANK_FILE, MANIFEST_FILE):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root / name}: prototype bank file missing")
        manifest = json.loads((root / MANIFEST_FILE).read_text())
        digest = hashlib.sha256((root / BANK_FILE).read_bytes()).hexdigest()
        if manifest.get("bank_sha256") and manifest["bank_sha256"] != digest:
            raise ValueError(f"{root / BANK_FILE}: tensors do not match the manifest (hash {digest[:12]}...)")
        bank = cls(
            noises=list(manifest["noises"]),
            severities=[int(s) for s in manifest["severities"]],
            tensors=load_file(str(root / BANK_FILE)),
            manifest=manifest,
        )
        if model is not None:
            bank.check_model(model)
        return bank


#: The tensors with one row per noise (leading axis), dropped by :meth:`PrototypeBank.without`.
_PER_NOISE = ("answer_maps", "answer_strength", "pooled_shift", "ridge_maps", "strength", "token_shift")


def strength_tensor(variant: str) -> str:
    """The bank tensor holding the strengths of a calibration variant's maps."""
    return "answer_strength" if variant == "answer" else "strength"


def from_level_choice(variant: str) -> str:
    """The manifest's ``choices`` key of the lowest perceived severity a variant's maps calibrate
    (:meth:`PrototypeBank.calibrates_from`)."""
    return f"{strength_tensor(variant)}_from_level"


def _nearest(values: Sequence[int], target: int) -> int:
    return int(np.argmin([abs(v - target) for v in values]))

"""PrototypeBank: what the model's own vision features look like, clean and under each artifact.

Built once per model, training-free (no weight changes), from clean reference images and their noisy
copies (every image noise x severity of :mod:`monai_imc.noise`), all through the model's own
:meth:`~monai_imc.models.base.VisionLanguageModel.encode_images`:

- **perceiver statistics**: a descriptor per image (mean and standard deviation of its vision tokens over
  the token axis), the mean descriptor of clean images and of every (noise, severity), and a shared
  (pooled within-class, shrunk) covariance: a linear discriminant that tells artifact type and severity;
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from monai_imc import __version__
from monai_imc.atomic import atomic_output
from monai_imc.models.base import ImageInput, VisionFeatures, VisionLanguageModel
from monai_imc.noise import SEVERITIES, check_severity, get_noise, list_noises

logger = logging.getLogger(__name__)

__all__ = [
    "BANK_FILE",
    "MANIFEST_FILE",
    "BankMismatchError",
    "PrototypeBank",
    "build_bank",
    "descriptor",
    "model_fingerprint",
]

BANK_FILE = "bank.safetensors"
MANIFEST_FILE = "manifest.json"
CLEAN = "clean"


class BankMismatchError(ValueError):
    """The bank was built with another model (its fingerprint differs)."""


def descriptor(tokens: torch.Tensor) -> torch.Tensor:
    """The perceiver's descriptor of one image: per-dimension mean and std of its tokens, ``(2 * dim,)``."""
    t = tokens.float()
    return torch.cat([t.mean(dim=0), t.std(dim=0, unbiased=False)])


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
    digest = hashlib.sha256()
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        if tensor.is_floating_point():
            digest.update(tensor.detach().to("cpu", torch.bfloat16).view(torch.int16).numpy().tobytes())
        else:
            digest.update(tensor.detach().cpu().numpy().tobytes())
    architectures = getattr(config, "architectures", None) or [type(hf_model).__name__]
    layer = getattr(config, "vision_feature_layer", None)
    return {
        "architecture": str(architectures[0]),
        "family": str(getattr(config, "model_type", "")),
        "feature_layer": "projector input" + (f" (vision_feature_layer={layer})" if layer is not None else ""),
        "vision_weights_sha256": digest.hexdigest(),
    }


def _to_hwc_uint8(image: ImageInput) -> np.ndarray:
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
    arr = _to_hwc_uint8(image)
    noisy = get_noise(noise).apply(np.ascontiguousarray(np.moveaxis(arr, -1, 0)), severity=severity, seed=seed)
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

    def strength(self, noise: str, severity: int) -> float:
        """The calibration strength chosen on validation for ``noise`` at ``severity``."""
        row = self.noises.index(noise)
        col = self.severities.index(severity) if severity in self.severities else _nearest(self.severities, severity)
        return float(self.tensors["strength"][row, col])

    @property
    def bank_hash(self) -> str:
        """SHA-256 of the saved tensors (set by :meth:`save` and :meth:`load`)."""
        return str(self.manifest.get("bank_sha256", ""))

    def check_model(self, model: VisionLanguageModel) -> None:
        """Raise :class:`BankMismatchError` when ``model`` is not the model the bank was built with."""
        expected = self.manifest.get("fingerprint", {})
        actual = model_fingerprint(model)
        differing = [k for k in expected if expected.get(k) != actual.get(k)]
        if differing:
            details = "; ".join(f"{k}: bank {expected.get(k)!r}, model {actual.get(k)!r}" for k in differing)
            raise BankMismatchError(f"prototype bank was built with another model ({details})")

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

    @classmethod
    def load(cls, directory: str | os.PathLike[str], model: VisionLanguageModel | None = None) -> PrototypeBank:
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


def _nearest(values: Sequence[int], target: int) -> int:
    return int(np.argmin([abs(v - target) for v in values]))


class _Stats:
    """Streaming sums for the bank (no feature tensor of the whole set is kept in memory)."""

    def __init__(self, n_classes: int, n_noises: int, n_sev: int, dim: int) -> None:
        d2 = 2 * dim
        self.desc_sum = torch.zeros(n_classes, d2, dtype=torch.float64)
        self.desc_count = torch.zeros(n_classes, dtype=torch.float64)
        self.desc_outer = torch.zeros(d2, d2, dtype=torch.float64)
        self.pooled_clean = torch.zeros(dim, dtype=torch.float64)
        self.pooled_shift = torch.zeros(n_noises, n_sev, dim, dtype=torch.float64)
        self.token_shift: torch.Tensor | None = None
        self.token_count: int | None = None
        self.xtx = torch.zeros(n_noises, dim + 1, dim + 1, dtype=torch.float64)
        self.xty = torch.zeros(n_noises, dim + 1, dim, dtype=torch.float64)
        self.n_images = 0


def _encode(model: VisionLanguageModel, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
    features: VisionFeatures = model.encode_images(list(images))
    return [t.detach().to("cpu", torch.float32) for t in features.tokens]


def build_bank(
    model: VisionLanguageModel,
    images: Sequence[ImageInput],
    noises: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    validation_fraction: float = 0.25,
    ridge_lambda: float = 0.05,
    shrinkage: float = 0.1,
    clean_false_alarm: float = 0.02,
    image_ids: Sequence[str] | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> PrototypeBank:
    """Build a :class:`PrototypeBank` for ``model`` from clean reference images.

    Every image is encoded clean and under every ``noise`` x ``severity`` (one vision pass each). A
    ``validation_fraction`` of the images (chosen by ``seed``) is held out of the statistics and used
    to choose the calibration strengths and the clean gate.

    Args:
        model: the model whose own vision features the bank describes.
        images: clean reference images (PIL, or (H, W[, C]) arrays; never test images).
        noises: image noises of the registry (default: all).
        severities: levels to build (default 1..5).
        seed: seed of the noises and of the split.
        validation_fraction: share of images for the choices (at least one image).
        ridge_lambda: ridge penalty of the noisy -> clean token maps, relative to the average eigenvalue of
            the tokens' Gram matrix.
        shrinkage: covariance shrinkage toward a scaled identity (0..1).
        clean_false_alarm: the gate lets at most this share of clean validation images be calibrated.
        image_ids: names of the images for the manifest (default: their index).
        batch_size: images per ``encode_images`` call.
        progress: show a progress bar.

    Raises:
        ValueError: fewer than 2 images, an unknown or non-image noise, a bad severity.
    """
    names = list(noises) if noises is not None else list_noises("image")
    for name in names:
        if get_noise(name).modality != "image":
            raise ValueError(f"noise {name!r} is a text noise; a prototype bank needs image noises")
    sev = [check_severity(s) for s in severities]
    if len(images) < 2:
        raise ValueError(f"a prototype bank needs at least 2 reference images, got {len(images)}")
    ids = [str(i) for i in (image_ids or range(len(images)))]
    order = np.random.RandomState(seed).permutation(len(images))
    n_val = min(len(images) - 1, max(1, round(validation_fraction * len(images))))
    val_idx, train_idx = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
    classes = [(CLEAN, 0)] + [(n, s) for n in names for s in sev]
    arrays = [_to_hwc_uint8(im) for im in images]

    bar = tqdm(total=len(images) * len(classes), desc="prototype bank", disable=not progress, unit="view")

    def variants(index: int) -> Callable[[], list[tuple[int, np.ndarray]]]:
        def make() -> list[tuple[int, np.ndarray]]:
            out = [(0, arrays[index])]
            for k, (name, level) in enumerate(classes[1:], start=1):
                out.append((k, corrupt(arrays[index], name, level, variant_seed(seed, index, names.index(name)))))
            return out

        return make

    def encoded(index: int) -> list[tuple[int, torch.Tensor]]:
        views = variants(index)()
        tokens: list[torch.Tensor] = []
        for start in range(0, len(views), batch_size):
            tokens.extend(_encode(model, [v for _, v in views[start : start + batch_size]]))
            bar.update(min(batch_size, len(views) - start))
        return [(k, t) for (k, _), t in zip(views, tokens)]

    # Pass 1: statistics from the training images.
    stats: _Stats | None = None
    train_descriptors: list[tuple[int, torch.Tensor]] = []
    for index in train_idx:
        pairs = encoded(index)
        clean = pairs[0][1]
        dim = clean.shape[1]
        if stats is None:
            stats = _Stats(len(classes), len(names), len(sev), dim)
            stats.token_count = clean.shape[0]
            stats.token_shift = torch.zeros(len(names), len(sev), clean.shape[0], dim, dtype=torch.float64)
        stats.n_images += 1
        stats.pooled_clean += clean.mean(0).double()
        fixed_grid = stats.token_shift is not None and clean.shape[0] == stats.token_count
        if not fixed_grid:
            stats.token_shift = None
        for k, tokens in pairs:
            d = descriptor(tokens).double()
            train_descriptors.append((k, d))
            stats.desc_sum[k] += d
            stats.desc_count[k] += 1
            if k == 0:
                continue
            n_i, s_i = divmod(k - 1, len(sev))
            delta = (tokens - clean).double()
            stats.pooled_shift[n_i, s_i] += delta.mean(0)
            if stats.token_shift is not None:
                stats.token_shift[n_i, s_i] += delta
            x = torch.cat([tokens.double(), torch.ones(tokens.shape[0], 1, dtype=torch.float64)], dim=1)
            stats.xtx[n_i] += x.T @ x
            stats.xty[n_i] -= x.T @ delta  # the map predicts clean - noisy
    assert stats is not None
    n = stats.n_images
    dim = stats.pooled_clean.shape[0]

    # Perceiver: class means and a shared, shrunk covariance of the standardised descriptors.
    all_desc = torch.stack([d for _, d in train_descriptors])
    center, scale = all_desc.mean(0), all_desc.std(0).clamp_min(1e-6)
    z = (all_desc - center) / scale
    labels = torch.tensor([k for k, _ in train_descriptors])
    means = torch.stack([z[labels == k].mean(0) for k in range(len(classes))])
    within = z - means[labels]
    cov = within.T @ within / max(1, len(z) - len(classes))
    cov = (1 - shrinkage) * cov + shrinkage * (torch.trace(cov) / cov.shape[0]) * torch.eye(cov.shape[0], dtype=cov.dtype)
    precision = torch.linalg.inv(cov)

    # Calibration: ridge maps (residual form: predict clean - noisy from noisy tokens, plus a bias).
    maps = torch.zeros(len(names), dim + 1, dim, dtype=torch.float64)
    for i in range(len(names)):
        mean_energy = torch.trace(stats.xtx[i][:dim, :dim]) / dim  # the average eigenvalue of X'X
        reg = ridge_lambda * float(mean_energy) * torch.eye(dim + 1, dtype=torch.float64)
        reg[dim, dim] = 1e-9  # the bias is not shrunk
        maps[i] = torch.linalg.solve(stats.xtx[i] + reg, stats.xty[i])

    tensors: dict[str, torch.Tensor] = {
        "descriptor_center": center.float(),
        "descriptor_scale": scale.float(),
        "class_means": means.float(),
        "precision": precision.float(),
        "clean_prototype": (stats.pooled_clean / n).float(),
        "pooled_shift": (stats.pooled_shift / n).float(),
        "ridge_maps": maps.float(),
        "strength": torch.ones(len(names), len(sev)),
    }
    if stats.token_shift is not None:
        tensors["token_shift"] = (stats.token_shift / n).float()
    bank = PrototypeBank(noises=names, severities=sev, tensors=tensors)

    # Pass 2: choices on the validation images.
    from monai_imc.calibrate import calibrate_tokens
    from monai_imc.perceive import ArtifactPerceiver

    perceiver = ArtifactPerceiver(bank, gate_threshold=1.0)
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    errors = torch.zeros(len(names), len(sev), len(grid), dtype=torch.float64)
    clean_scores: list[float] = []
    distances: list[float] = []
    for index in val_idx:
        pairs = encoded(index)
        clean = pairs[0][1]
        clean_scores.append(1.0 - perceiver.perceive_tokens(clean).p_clean)
        distances += [perceiver.distance(tokens) for _k, tokens in pairs]
        for k, tokens in pairs[1:]:
            n_i, s_i = divmod(k - 1, len(sev))
            for g, strength in enumerate(grid):
                out = calibrate_tokens(bank, tokens, names[n_i], sev[s_i], strength)
                errors[n_i, s_i, g] += float(((out - clean) ** 2).mean())
    bar.close()
    best = errors.argmin(dim=2)
    bank.tensors["strength"] = torch.tensor(grid, dtype=torch.float32)[best]
    gate = float(np.quantile(clean_scores, 1.0 - clean_false_alarm)) if clean_scores else 0.5
    gate = min(max(gate + 1e-6, 0.05), 0.999)
    # The bank's range: 1.5 x the 99.5th percentile of the validation images' distances (clean and noisy).
    range_threshold = 1.5 * float(np.quantile(distances, 0.995)) if distances else None
    bank.manifest = {
        "monai_imc_version": __version__,
        "fingerprint": model_fingerprint(model),
        "model_name": getattr(model, "name", ""),
        "noise_parameters": {name: [dict(p) for p in get_noise(name).levels] for name in names},
        "seed": seed,
        "images": {"train": [ids[i] for i in train_idx], "validation": [ids[i] for i in val_idx]},
        "choices": {
            "gate_threshold": gate,
            "clean_false_alarm_target": clean_false_alarm,
            "range_threshold": range_threshold,
            "range_rule": "1.5 x the 99.5th percentile of the validation descriptors' distance to the nearest class",
            "strength_grid": list(grid),
            "ridge_lambda": ridge_lambda,
            "shrinkage": shrinkage,
            "criterion": "token MSE to the clean features on the validation images",
        },
        "descriptor": "mean and std of the projector-input tokens over the token axis, standardised",
        "token_grid": stats.token_count if "token_shift" in tensors else None,
    }
    logger.info("Built a prototype bank: %d noises x %d severities from %d + %d images", len(names), len(sev),
                len(train_idx), len(val_idx))
    return bank

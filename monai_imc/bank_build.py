"""Building a :class:`~monai_imc.prototypes.PrototypeBank`: two streaming passes over reference images.

Every clean reference image is copied under every image noise x severity, each copy encoded once by the
model, and measured (:mod:`monai_imc.quality`) on the same view. Pass 1 (training images) gathers the
calibration statistics and the perceiver's descriptors; pass 2 (validation images) the descriptors and
the calibration errors by strength. Then, on the validation images, the perceiver's discriminants are
chosen (parts, shrinkage, gate level: :func:`monai_imc.perceiver_choice.fit_perceivers`), its clean gate set and
the calibration strengths picked.

Usage::

    from monai_imc.bank_build import build_bank

    bank = build_bank(model, images, image_ids=paths, progress=True)
    bank.save("bank/")
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from monai_imc import __version__
from monai_imc.calibrate import calibrate_tokens
from monai_imc.models.base import ImageInput, VisionFeatures, VisionLanguageModel
from monai_imc.noise import SEVERITIES, check_severity, get_noise, list_noises
from monai_imc.perceiver_choice import PerceiverChoice, class_log_prior, fit_perceivers
from monai_imc.prototypes import (
    CLEAN,
    PrototypeBank,
    corrupt,
    descriptor,
    model_fingerprint,
    to_hwc_uint8,
    variant_seed,
)
from monai_imc.quality import MEASURES, assessability, check_measures, measure_vector

logger = logging.getLogger(__name__)

__all__ = ["EncodeMany", "PerceiverChoice", "build_bank", "class_log_prior", "encode_variants", "fit_perceivers"]

EncodeMany = Callable[
    [Sequence[tuple[int, np.ndarray]], Sequence[str], Sequence[int], int, int, bool],
    Mapping[int, list[tuple[int, torch.Tensor, torch.Tensor]]],
]
"""``(items, names, severities, seed, batch_size, physics) -> {index: encode_variants(...)}``."""

class _Calibration:
    """Streaming sums of the calibration statistics (no feature tensor of the whole set is kept)."""

    def __init__(self, n_noises: int, n_sev: int, clean: torch.Tensor) -> None:
        dim = clean.shape[1]
        self.pooled_clean = torch.zeros(dim, dtype=torch.float64)
        self.pooled_shift = torch.zeros(n_noises, n_sev, dim, dtype=torch.float64)
        self.token_count: int | None = clean.shape[0]
        self.token_shift: torch.Tensor | None = torch.zeros(
            n_noises, n_sev, clean.shape[0], dim, dtype=torch.float64
        )
        self.xtx = torch.zeros(n_noises, dim + 1, dim + 1, dtype=torch.float64)
        self.xty = torch.zeros(n_noises, dim + 1, dim, dtype=torch.float64)
        self.n_images = 0

    def add(self, pairs: Sequence[tuple[int, torch.Tensor]], n_sev: int) -> None:
        clean = pairs[0][1]
        self.n_images += 1
        self.pooled_clean += clean.mean(0).double()
        if self.token_shift is not None and clean.shape[0] != self.token_count:
            self.token_shift = None  # the token grid is not fixed
        for k, tokens in pairs[1:]:
            n_i, s_i = divmod(k - 1, n_sev)
            delta = (tokens - clean).double()
            self.pooled_shift[n_i, s_i] += delta.mean(0)
            if self.token_shift is not None:
                self.token_shift[n_i, s_i] += delta
            x = torch.cat([tokens.double(), torch.ones(tokens.shape[0], 1, dtype=torch.float64)], dim=1)
            self.xtx[n_i] += x.T @ x
            self.xty[n_i] -= x.T @ delta  # the map predicts clean - noisy

    def ridge_maps(self, ridge_lambda: float, rank: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per noise, the ridge map (residual form: clean - noisy from noisy tokens, plus a bias).

        With ``rank`` below the token width the maps are fitted in the span of the ``rank`` leading
        eigenvectors ``U`` of the noisy tokens' second moment (returned as the basis): ``(rank + 1, rank)``
        per noise instead of ``(dim + 1, dim)``, so a bank of a wide tower stays small.

        Returns:
            ``(maps, basis)``; ``basis`` is ``None`` for full-width maps.
        """
        n_noises, dim = self.xty.shape[0], self.xty.shape[2]
        xtx, xty, basis = self.xtx, self.xty, None
        if rank is not None and rank < dim:
            _, vectors = torch.linalg.eigh(self.xtx[:, :dim, :dim].sum(0))
            basis = vectors[:, -rank:].flip(1)  # (dim, rank), leading first
            lift = torch.zeros(dim + 1, rank + 1, dtype=torch.float64)
            lift[:dim, :rank], lift[dim, rank] = basis, 1.0
            xtx = lift.T @ self.xtx @ lift
            xty = lift.T @ self.xty @ basis
            dim = rank
        maps = torch.zeros(n_noises, dim + 1, dim, dtype=torch.float64)
        for i in range(n_noises):
            mean_energy = torch.trace(xtx[i][:dim, :dim]) / dim  # the average eigenvalue of X'X
            reg = ridge_lambda * float(mean_energy) * torch.eye(dim + 1, dtype=torch.float64)
            reg[dim, dim] = 1e-9  # the bias is not shrunk
            maps[i] = torch.linalg.solve(xtx[i] + reg, xty[i])
        return maps, basis


def _assessable(
    images: Sequence[ImageInput], names: Sequence[str], what: str
) -> tuple[list[np.ndarray], list[str]]:
    """The assessable ``images`` as (H, W, C) uint8 arrays, with their names; the others are left out with a
    warning that names them and says why."""
    arrays, kept = [], []
    for image, name in zip(images, names):
        reason = assessability(np.asarray(image))
        if reason is not None:
            logger.warning("prototype bank: %s %s left out: %s", what, name, reason)
            continue
        arrays.append(to_hwc_uint8(image))
        kept.append(str(name))
    return arrays, kept


def view_sides(views: Sequence[np.ndarray]) -> dict[str, float]:
    """The sides (pixels) of the reference views: the sizes the bank's statistics describe.

    ``min`` / ``median`` / ``max`` are of the shorter sides, ``long_min`` / ``long_median`` / ``long_max``
    of the longer ones (a view's scale: a wide view is as detailed as a square one of its longer side).
    """
    shapes = [np.asarray(v).shape[:2] for v in views]
    short = np.array([min(s) for s in shapes], dtype=np.float64)
    long = np.array([max(s) for s in shapes], dtype=np.float64)
    return {
        "min": float(short.min()),
        "median": float(np.median(short)),
        "max": float(short.max()),
        "long_min": float(long.min()),
        "long_median": float(np.median(long)),
        "long_max": float(long.max()),
    }


def encode_variants(
    model: VisionLanguageModel,
    array: np.ndarray,
    index: int,
    names: Sequence[str],
    severities: Sequence[int],
    seed: int,
    batch_size: int = 8,
    physics: bool = True,
) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """(class, tokens, raw descriptor) of one reference image's clean view and every noisy copy.

    Class 0 is the clean view, then every noise x severity in order; the noise seed depends on the seed,
    the image's index and the noise only (:func:`variant_seed`), so any process computes the same views.
    """
    classes = [(CLEAN, 0)] + [(n, s) for n in names for s in severities]
    views = [array] + [corrupt(array, n, s, variant_seed(seed, index, list(names).index(n))) for n, s in classes[1:]]
    out = []
    for start in range(0, len(views), batch_size):
        batch = views[start : start + batch_size]
        features: VisionFeatures = model.encode_images(list(batch))
        for offset, (view, tokens) in enumerate(zip(batch, features.tokens)):
            tokens = tokens.detach().to("cpu", torch.float32)
            d = descriptor(tokens).double()
            if physics:
                d = torch.cat([d, torch.from_numpy(measure_vector(view)).double()])
            out.append((start + offset, tokens, d))
    return out


def build_bank(
    model: VisionLanguageModel,
    images: Sequence[ImageInput],
    noises: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    validation_fraction: float = 0.25,
    ridge_lambda: float = 0.05,
    ridge_rank: int | None = 256,
    descriptor_rank: int | None = 64,
    clean_false_alarm: float = 0.02,
    image_ids: Sequence[str] | None = None,
    batch_size: int = 8,
    progress: bool = False,
    physics: bool = True,
    modalities: Sequence[str] | None = None,
    encode_many: EncodeMany | None = None,
    clean_images: Sequence[ImageInput] = (),
    clean_image_ids: Sequence[str] | None = None,
    measures: Sequence[str] | None = None,
) -> PrototypeBank:
    """Build a :class:`PrototypeBank` for ``model`` from clean reference images.

    Every image is encoded clean and under every ``noise`` x ``severity`` (one vision pass each). A
    ``validation_fraction`` of the images (chosen by ``seed``) is held out of the statistics and used to
    choose the perceiver's discriminants and clean gate and the calibration strengths.

    Args:
        model: the model whose own vision features the bank describes.
        images: clean reference images (PIL, or (H, W[, C]) arrays; never test images). Images that are
            not assessable (constant, tiny ...) are left out, with a warning.
        noises: image noises of the registry (default: all).
        severities: levels to build (default 1..5).
        seed: seed of the noises and of the split.
        validation_fraction: share of images for the choices (at least one image).
        ridge_lambda: ridge penalty of the noisy -> clean token maps, relative to the average eigenvalue of
            the tokens' Gram matrix.
        ridge_rank: tokens wider than this get low-rank maps in the span of their leading directions
            (``None``: full width); keeps a 1,280-wide tower's bank at megabytes, not 60 MB.
        descriptor_rank: the token part of the descriptor (``2 x width``) is projected on this many
            principal components of the training descriptors where it is wider (``None``: never).
        clean_false_alarm: the gate lets at most this share of clean validation images be reported.
        image_ids: names of the images for the manifest (default: their index).
        batch_size: images per ``encode_images`` call.
        progress: show a progress bar.
        physics: add the physics measures to the descriptor (a fused discriminant).
        modalities: the DICOM modalities the reference images show (``CT``, ``MR``, ``CR`` ...), recorded
            in the manifest: the perceiver calls a view of another modality not assessable. ``None``:
            not recorded, no modality check.
        encode_many: computes :func:`encode_variants` of many ``(index, image)`` at once, e.g. on Ray
            workers (:func:`monai_imc.bench.scale.ray_bank_encoder`); ``None``: here, one image at a time.
            The bank is the same either way.
        clean_images: more clean reference images, encoded clean only (one vision pass each, no noisy
            copies): they widen what the perceiver knows of clean images and calibrate its clean gate on
            more of them (a site's own clean studies are the cheapest). Split like ``images``; not used
            for the calibration maps.
        clean_image_ids: their names for the manifest (default ``clean<index>``).
        measures: the physics measures the fused descriptor reads (default: every one of
            :data:`~monai_imc.quality.MEASURES`), recorded in the manifest; leave out those that do not
            hold on a site's images (e.g. the clipped shares where views are windowed).

    Raises:
        ValueError: fewer than 2 assessable images, an unknown or non-image noise, a bad severity, an
            unknown measure.
    """
    names = list(noises) if noises is not None else list_noises("image")
    for name in names:
        if get_noise(name).modality != "image":
            raise ValueError(f"noise {name!r} is a text noise; a prototype bank needs image noises")
    sev = [check_severity(s) for s in severities]
    measure_names = check_measures(MEASURES if measures is None else measures) if physics else []
    all_ids = [str(i) for i in (image_ids or range(len(images)))]
    arrays, ids = _assessable(images, all_ids, "image")
    if len(arrays) < 2:
        raise ValueError(f"a prototype bank needs at least 2 assessable reference images, got {len(arrays)}")
    clean_arrays, clean_ids = _assessable(
        clean_images, clean_image_ids or [f"clean{i}" for i in range(len(clean_images))], "clean image"
    )
    order = np.random.RandomState(seed).permutation(len(arrays))
    n_val = min(len(arrays) - 1, max(1, round(validation_fraction * len(arrays))))
    val_idx, train_idx = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
    classes = [(CLEAN, 0)] + [(n, s) for n in names for s in sev]
    n_measures = len(measure_names)
    keep = torch.tensor([MEASURES.index(m) for m in measure_names], dtype=torch.long)

    def picked(d: torch.Tensor) -> torch.Tensor:
        """A raw descriptor (tokens, every measure) with only the bank's measures, in its order."""
        n_tok = d.shape[0] - len(MEASURES) if physics else d.shape[0]
        return torch.cat([d[:n_tok], d[n_tok:][keep]]) if physics else d

    clean_order = np.random.RandomState(seed + 1).permutation(len(clean_arrays))
    n_clean_val = round(validation_fraction * len(clean_arrays))
    clean_val, clean_train = sorted(clean_order[:n_clean_val].tolist()), sorted(clean_order[n_clean_val:].tolist())
    bar = tqdm(
        total=len(arrays) * len(classes) + len(clean_arrays), desc="prototype bank", disable=not progress, unit="view"
    )

    def clean_only(indices: Sequence[int]) -> list[torch.Tensor]:
        """Raw descriptors of clean-only reference images (class 0)."""
        out = []
        for i in indices:
            out.append(picked(encode_variants(model, clean_arrays[i], i, (), sev, seed, 1, physics)[0][2]))
            bar.update(1)
        return out

    shared = encode_many(
        [(i, arrays[i]) for i in (*train_idx, *val_idx)], names, sev, seed, batch_size, physics
    ) if encode_many is not None else {}

    def encoded(index: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(class, tokens, raw descriptor) of one image's clean view and every noisy copy."""
        out = shared.pop(index) if index in shared else encode_variants(
            model, arrays[index], index, names, sev, seed, batch_size, physics
        )
        bar.update(len(classes))
        return [(k, tokens, picked(d)) for k, tokens, d in out]

    # Pass 1: calibration statistics and descriptors of the training images.
    calibration: _Calibration | None = None
    train_desc, train_labels, train_images = [], [], []
    for index in train_idx:
        triples = encoded(index)
        if calibration is None:
            calibration = _Calibration(len(names), len(sev), triples[0][1])
        calibration.add([(k, t) for k, t, _ in triples], len(sev))
        train_desc += [d for _, _, d in triples]
        train_labels += [k for k, _, _ in triples]
        train_images += [index] * len(triples)
    assert calibration is not None
    train_desc += clean_only(clean_train)
    train_labels += [0] * len(clean_train)
    train_images += [len(arrays) + i for i in clean_train]  # each clean-only image is an image of its own
    n = calibration.n_images
    maps, basis = calibration.ridge_maps(ridge_lambda, ridge_rank)
    tensors: dict[str, torch.Tensor] = {
        "clean_prototype": (calibration.pooled_clean / n).float(),
        "pooled_shift": (calibration.pooled_shift / n).float(),
        "ridge_maps": maps.float(),
        "strength": torch.ones(len(names), len(sev)),
    }
    if basis is not None:
        tensors["ridge_basis"] = basis.float()
    if calibration.token_shift is not None:
        tensors["token_shift"] = (calibration.token_shift / n).float()
    bank = PrototypeBank(noises=names, severities=sev, tensors=tensors)

    # Pass 2: descriptors and calibration errors by strength on the validation images.
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    errors = torch.zeros(len(names), len(sev), len(grid), dtype=torch.float64)
    val_desc, val_labels = [], []
    for index in val_idx:
        triples = encoded(index)
        clean = triples[0][1]
        val_desc += [d for _, _, d in triples]
        val_labels += [k for k, _, _ in triples]
        for k, tokens, _ in triples[1:]:
            n_i, s_i = divmod(k - 1, len(sev))
            for g, strength in enumerate(grid):
                out = calibrate_tokens(bank, tokens, names[n_i], sev[s_i], strength)
                errors[n_i, s_i, g] += float(((out - clean) ** 2).mean())
    val_desc += clean_only(clean_val)
    val_labels += [0] * len(clean_val)
    bar.close()
    bank.tensors["strength"] = torch.tensor(grid, dtype=torch.float32)[errors.argmin(dim=2)]

    # The perceiver: standardise on the training descriptors, choose the discriminants on validation.
    all_train = torch.stack(train_desc)
    center, scale = all_train.mean(0), all_train.std(0).clamp_min(1e-6)
    train_z = ((all_train - center) / scale).float()
    val_z = ((torch.stack(val_desc) - center) / scale).float()
    n_tok = train_z.shape[1] - n_measures
    if descriptor_rank is not None and n_tok > descriptor_rank:
        # principal components of the standardised token part (a wide tower's 2 x 1,280 statistics would
        # need a 2,560-square discriminant for a few hundred images)
        _, _, vh = torch.linalg.svd(train_z[:, :n_tok], full_matrices=False)
        projection = vh[:descriptor_rank].T.contiguous()
        train_z = torch.cat([train_z[:, :n_tok] @ projection, train_z[:, n_tok:]], dim=1)
        val_z = torch.cat([val_z[:, :n_tok] @ projection, val_z[:, n_tok:]], dim=1)
        bank.tensors["descriptor_projection"] = projection
    chosen = fit_perceivers(
        train_z,
        torch.tensor(train_labels),
        val_z,
        torch.tensor(val_labels),
        len(names),
        sev,
        n_measures,
        clean_false_alarm,
        train_images=torch.tensor(train_images),
    )
    bank.tensors["descriptor_center"] = center.float()
    bank.tensors["descriptor_scale"] = scale.float()
    perceivers = {}
    for name, choice in chosen.items():
        bank.tensors.update(choice.lda.to_tensors(f"perceiver.{name}"))
        perceivers[name] = {
            "parts": choice.parts,
            "shrinkage": choice.shrinkage,
            "gate_threshold": choice.gate_threshold,
            "gate_min_severity": choice.gate_min_severity,
            "kinds": choice.kinds,
            "range_threshold": choice.range_threshold,
            "validation": choice.validation,
        }
    main = chosen.get("fused") or chosen["tokens"]
    bank.manifest = {
        "monai_imc_version": __version__,
        "bank_format": 2,
        "fingerprint": model_fingerprint(model),
        "model_name": getattr(model, "name", ""),
        "noise_parameters": {name: [dict(p) for p in get_noise(name).levels] for name in names},
        "seed": seed,
        "images": {"train": [ids[i] for i in train_idx], "validation": [ids[i] for i in val_idx]},
        "clean_images": {
            "train": [clean_ids[i] for i in clean_train],
            "validation": [clean_ids[i] for i in clean_val],
        },
        "choices": {
            "gate_threshold": main.gate_threshold,
            "range_threshold": main.range_threshold,
            "clean_false_alarm_target": clean_false_alarm,
            "perceivers": perceivers,
            "range_rule": "1.5 x the 99.5th percentile of the validation descriptors' distance to the nearest class",
            "gate_rule": f"the {100 * (1 - clean_false_alarm):g}th percentile, on clean validation images, of the "
            "probability of an artifact at the perceiver's gate_min_severity or above",
            "selection": "descriptor parts, shrinkage and kinds of image with the most validation images at "
            "severity >= 3 reported with the right noise type",
            "strength_grid": list(grid),
            "ridge_lambda": ridge_lambda,
            "criterion": "token MSE to the clean features on the validation images",
        },
        "descriptor": "mean and std of the projector-input tokens over the token axis"
        + (f", then the physics measures {measure_names}" if physics else "")
        + "; standardised",
        "measures": measure_names,
        "view_sides": view_sides(arrays),
        "modalities": sorted({m.strip().upper() for m in modalities if m.strip()}) if modalities else None,
        "token_grid": calibration.token_count if "token_shift" in tensors else None,
    }
    logger.info(
        "Built a prototype bank: %d noises x %d severities from %d + %d images (and %d + %d clean only); "
        "perceiver %s (validation %s)",
        len(names),
        len(sev),
        len(train_idx),
        len(val_idx),
        len(clean_train),
        len(clean_val),
        main.parts,
        main.validation,
    )
    return bank

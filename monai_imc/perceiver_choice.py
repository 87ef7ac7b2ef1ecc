"""Choosing the perceiver on validation images: which descriptor parts, shrinkage, kinds of image and gate
level.

:func:`fit_perceivers` fits candidate :class:`~monai_imc.discriminant.LinearDiscriminant` s on the training
descriptors of a prototype bank and keeps, per name (``"tokens"``, ``"fused"``), the one that types the
most validation images right at severity >= 3 once its clean gate is set, among those whose gate meets
the false-alarm target. :func:`monai_imc.bank_build.build_bank` is its caller.

Kinds of image: clean radiographs and cross-sections (or a site's modalities) differ more from each other
than a faint artifact differs from a clean image, so one mean per class blurs both. :func:`image_kinds`
groups the reference images by their clean tokens (k-means on the leading principal components, no
labels needed), and every class gets one mean per kind (a mixture discriminant); how many kinds
(:data:`KINDS`) is chosen on validation like the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch

from monai_imc.discriminant import LinearDiscriminant

__all__ = [
    "GATE_LEVELS",
    "KINDS",
    "KIND_COMPONENTS",
    "SHRINKAGES",
    "UNSHRUNK_DOF",
    "PerceiverChoice",
    "class_log_prior",
    "fit_perceivers",
    "gate_probability",
    "image_kinds",
]

SHRINKAGES = (0.0, 0.01, 0.05, 0.2, 0.5)
"""Covariance shrinkages tried on validation (none only where the within-class degrees of freedom are
at least :data:`UNSHRUNK_DOF` times the dimensions)."""

UNSHRUNK_DOF = 4
"""An unshrunk (or barely shrunk, < 0.01) covariance needs this many within-class degrees of freedom per
dimension."""

GATE_LEVELS = (1, 2)
"""The lowest artifact level the clean gate reads, tried on validation: 1 reads ``1 - p_clean``; 2 leaves
out the faintest level of every noise, which on clean validation images looks like a clean image."""


KINDS = (1, 2, 3, 4)
"""Numbers of kinds of image tried on validation (1: one mean per class)."""

KIND_COMPONENTS = 8
"""Leading principal components of the clean images' token descriptors that :func:`image_kinds` clusters."""


def image_kinds(
    clean_tokens: torch.Tensor,
    k: int,
    components: int = KIND_COMPONENTS,
    restarts: int = 10,
    iterations: int = 100,
    seed: int = 0,
) -> torch.Tensor:
    """Group images into ``k`` kinds by their clean token descriptors ``(n_images, dim)``: k-means on the
    leading ``components`` principal components, k-means++ starts (seeded), the tightest of ``restarts``.
    Returns each image's kind ``(n_images,)``, the largest kind first."""
    n = clean_tokens.shape[0]
    if k <= 1 or n < 2 * k:
        return torch.zeros(n, dtype=torch.long)
    x = clean_tokens.double() - clean_tokens.double().mean(0)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    x = x @ vh[:components].T
    gen = torch.Generator().manual_seed(seed)
    best, best_inertia = torch.zeros(n, dtype=torch.long), float("inf")
    for _ in range(restarts):
        centres = x[torch.randint(n, (1,), generator=gen)]
        while len(centres) < k:  # k-means++: the next centre far from the chosen ones, at random
            weight = torch.cdist(x, centres).min(1).values ** 2
            centres = torch.cat([centres, x[torch.multinomial(weight / weight.sum(), 1, generator=gen)]])
        kinds = torch.cdist(x, centres).argmin(1)
        for _ in range(iterations):
            centres = torch.stack([x[kinds == j].mean(0) if bool((kinds == j).any()) else centres[j] for j in range(k)])
            new = torch.cdist(x, centres).argmin(1)
            if bool((new == kinds).all()):
                break
            kinds = new
        inertia = float(((x - centres[kinds]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = kinds, inertia
    order = torch.argsort(torch.bincount(best, minlength=k), descending=True)
    return torch.argsort(order)[best]


@dataclass(frozen=True)
class PerceiverChoice:
    """One discriminant chosen on validation, with its clean gate and range.

    Attributes:
        name: ``"fused"`` (used with views) or ``"tokens"`` (used without).
        parts: the descriptor parts it reads (``"tokens"``, ``"physics"``, ``"tokens+physics"``).
        lda: the discriminant.
        shrinkage: its covariance shrinkage.
        gate_threshold: the probability of an artifact (at ``gate_min_severity`` or above) at which one is
            reported.
        range_threshold: the largest distance of an image like the bank's.
        validation: its validation scores (type right and flagged at severity >= 3, clean false alarm).
        gate_min_severity: the lowest artifact level the gate reads.
        kinds: the kinds of image its classes are mixtures of (1: none).
    """

    name: str
    parts: str
    lda: LinearDiscriminant
    shrinkage: float
    gate_threshold: float
    range_threshold: float
    validation: dict[str, float]
    gate_min_severity: int = 1
    kinds: int = 1


def class_log_prior(n_noises: int, n_severities: int) -> torch.Tensor:
    """Log prior of ``clean`` then every (noise, severity): each type alike, a noise's share split over levels."""
    n_types = n_noises + 1
    prior = torch.full((1 + n_noises * n_severities,), 1.0 / (n_types * n_severities))
    prior[0] = 1.0 / n_types
    return prior.log()


def gate_probability(posteriors: torch.Tensor, severities: Sequence[int], level: int) -> torch.Tensor:
    """What the clean gate reads: the probability of an artifact at ``level`` or above, ``(n,)``, from class
    posteriors ``(n, 1 + n_noises * len(severities))`` (clean, then noise-major, severity-minor). Level 1
    is ``1 - p_clean``; a higher level leaves out the fainter levels of every noise."""
    per_level = posteriors[:, 1:].reshape(posteriors.shape[0], -1, len(severities))
    below = [i for i, s in enumerate(severities) if s < level]
    faint = per_level[:, :, below].sum((1, 2)) if below else torch.zeros(posteriors.shape[0])
    return 1.0 - posteriors[:, 0] - faint


def _gate(clean_scores: np.ndarray, false_alarm: float) -> float:
    # "higher": never below the target on the validation images themselves (with few images, the max)
    gate = float(np.quantile(clean_scores, 1.0 - false_alarm, method="higher")) if clean_scores.size else 0.5
    return min(max(gate + 1e-6, 0.05), 0.999)


def fit_perceivers(
    train_z: torch.Tensor,
    train_labels: torch.Tensor,
    val_z: torch.Tensor,
    val_labels: torch.Tensor,
    n_noises: int,
    severities: Sequence[int],
    n_measures: int,
    clean_false_alarm: float = 0.02,
    shrinkages: Sequence[float] = SHRINKAGES,
    train_images: torch.Tensor | None = None,
    kinds: Sequence[int] = KINDS,
) -> dict[str, PerceiverChoice]:
    """Fit candidate discriminants on the training descriptors and choose on the validation ones.

    Candidates: the token part, the physics part, both (where ``n_measures > 0``), each at every
    ``shrinkage``, every number of ``kinds`` of image (where ``train_images`` says which image each
    training descriptor comes from; the kinds are read from the images' clean descriptors, class 0, and
    each noisy copy has its image's kind) and every gate level of :data:`GATE_LEVELS` within ``severities``. Criterion: the share
    of validation images at severity >= 3 that are reported with the right noise type once the clean gate
    lets ``clean_false_alarm`` of clean validation images pass, among the candidates whose gate meets
    that target on validation (a gate at its 0.999 cap may not; then the best of all); of its variants
    with other numbers of kinds, the fewest kinds whose score is within one standard error of it (a
    mixture of more kinds fits the reference images' own pool better than new images).

    Args:
        train_z: standardised descriptors ``(n, dim)``, the last ``n_measures`` dimensions the measures.
        train_labels: class index of each (0 clean, then noise-major, severity-minor).
        val_z: validation descriptors.
        val_labels: their classes.
        n_noises: number of noises.
        severities: the severity levels.
        n_measures: how many physics measures end the descriptor (0: none).
        clean_false_alarm: the gate's target share of clean images reported as artifacts.
        shrinkages: covariance shrinkages to try.
        train_images: ``(n,)`` the reference image of each training descriptor (``None``: one kind).
        kinds: numbers of kinds of image to try.

    Returns:
        ``{"tokens": ...}`` and, with measures, ``{"fused": ...}`` (the best of physics and tokens+physics).
    """
    n_sev, dim = len(severities), train_z.shape[1]
    n_classes = 1 + n_noises * n_sev
    log_prior = class_log_prior(n_noises, n_sev)
    token_mask = torch.zeros(dim, dtype=torch.bool)
    token_mask[: dim - n_measures] = True
    parts = {"tokens": token_mask}
    if n_measures:
        parts["physics"] = ~token_mask
        parts["tokens+physics"] = torch.ones(dim, dtype=torch.bool)
    val_noise = torch.where(val_labels == 0, -1, (val_labels - 1) // n_sev)
    val_sev = torch.tensor([0, *[s for _ in range(n_noises) for s in severities]])[val_labels]
    strong, clean = (val_labels > 0) & (val_sev >= 3), val_labels == 0
    candidates: dict[str, list[PerceiverChoice]] = {"tokens": [], "fused": []}
    dof = len(train_z) - n_classes
    levels = [1] + [g for g in GATE_LEVELS if g > 1 and min(severities) < g <= max(severities)]
    groupings: dict[int, torch.Tensor | None] = {1: None}
    if train_images is not None:
        clean_rows = torch.nonzero(train_labels == 0).flatten()
        images = train_images[clean_rows].long()
        for k in kinds:
            if k > 1:
                of_image = torch.zeros(int(train_images.max()) + 1, dtype=torch.long)
                of_image[images] = image_kinds(train_z[clean_rows][:, token_mask], k)
                groupings[k] = of_image[train_images.long()]
    for part, mask in parts.items():
        for shrinkage, (n_kinds, groups) in product(shrinkages, groupings.items()):
            if shrinkage < 0.01 and dof < UNSHRUNK_DOF * int(mask.sum()):
                continue  # too few images for an (almost) unshrunk covariance
            lda = LinearDiscriminant.fit(train_z, train_labels, n_classes, shrinkage, log_prior, mask, groups)
            post = lda.posteriors(val_z)
            typed = post[:, 1:].reshape(-1, n_noises, n_sev).sum(2).argmax(1)
            distances = lda.distances(val_z).numpy()
            for level in levels:
                artifact = gate_probability(post, severities, level)
                gate = _gate(artifact[clean].numpy(), clean_false_alarm)
                right = (artifact >= gate) & (typed == val_noise)
                choice = PerceiverChoice(
                    "tokens" if part == "tokens" else "fused",
                    part,
                    lda,
                    shrinkage,
                    gate,
                    1.5 * float(np.quantile(distances, 0.995)),
                    {
                        "type_right_severity_3_plus": float(right[strong].float().mean()),
                        "clean_false_alarm": float((artifact[clean] >= gate).float().mean()),
                    },
                    level,
                    n_kinds,
                )
                candidates[choice.name].append(choice)
    # one standard error of the validation score: more kinds must beat fewer by more than that
    n_strong = max(1, int(strong.sum()))

    def meets(c: PerceiverChoice) -> bool:
        return c.validation["clean_false_alarm"] <= clean_false_alarm + 1e-9

    chosen = {}
    for name, options in candidates.items():
        if not options:
            continue
        # the gate's false-alarm target first (a gate at its cap can miss it), then accuracy
        best = max(options, key=lambda c: (meets(c), c.validation["type_right_severity_3_plus"]))
        score = best.validation["type_right_severity_3_plus"]
        error = (score * (1.0 - score) / n_strong) ** 0.5
        simpler = [
            c for c in options
            if (c.parts, c.shrinkage, c.gate_min_severity) == (best.parts, best.shrinkage, best.gate_min_severity)
            and meets(c) == meets(best) and c.validation["type_right_severity_3_plus"] >= score - error
        ]
        chosen[name] = min(simpler, key=lambda c: (c.kinds, -c.validation["type_right_severity_3_plus"]))
    return chosen

"""Discriminants over standardised descriptors: the perceiver's classifiers.

:class:`LinearDiscriminant`: the classes share one covariance (pooled within-class, shrunk toward a scaled
identity); an image's posterior over the classes is a softmax of linear scores, and its squared Mahalanobis
distance to the nearest class mean (per dimension) says whether it looks like the images the discriminant
was fitted on. :class:`QuadraticDiscriminant` (regularised discriminant analysis, Friedman 1989): each
class keeps part of its own covariance (``1 - pooling`` of it, the rest the shared one), so a noise that
changes how the descriptor *varies* (a bias field's smooth shading, ghosting's replicas) is told apart
from clean images whose means it shares. Both are stored as plain tensors (``<prefix>.mask``, ``.means``,
``.precision`` or ``.precisions`` and ``.log_dets``, ``.log_prior``) so that a prototype bank's
safetensors file holds them; :func:`discriminant_from_tensors` reads either.

Usage::

    lda = LinearDiscriminant.fit(z, labels, n_classes=46, shrinkage=0.2, log_prior=prior.log())
    post = lda.posteriors(z_new)           # (n, n_classes)
    dist = lda.distances(z_new)            # (n,)
    rda = QuadraticDiscriminant.fit(z, labels, 46, 0.0, prior.log(), pooling=0.5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = [
    "Discriminant",
    "LinearDiscriminant",
    "QuadraticDiscriminant",
    "discriminant_from_tensors",
]


@dataclass(frozen=True)
class LinearDiscriminant:
    """Linear discriminant on the dimensions ``mask`` selects of a standardised descriptor.

    Attributes:
        mask: ``(dim,)`` bool, the descriptor dimensions used.
        means: ``(n_classes, used)`` class means.
        precision: ``(used, used)`` inverse of the shared, shrunk covariance.
        log_prior: ``(n_classes,)`` log prior of each class.
    """

    mask: torch.Tensor
    means: torch.Tensor
    precision: torch.Tensor
    log_prior: torch.Tensor

    @classmethod
    def fit(
        cls,
        z: torch.Tensor,
        labels: torch.Tensor,
        n_classes: int,
        shrinkage: float,
        log_prior: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> LinearDiscriminant:
        """Fit on standardised descriptors ``z`` ``(n, dim)`` with integer ``labels`` ``(n,)``.

        Raises:
            ValueError: a class without a sample, or a shrinkage outside [0, 1].
        """
        mask, _x, means, cov = _pooled(z, labels, n_classes, shrinkage, mask)
        return cls(mask, means.float(), torch.linalg.inv(cov).float(), log_prior.float())

    @cached_property
    def _linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``W = means @ precision`` and the scores' offsets ``-diag(W means^T) / 2 + log_prior``: fixed by the
        fitted tensors, computed once."""
        weights = self.means @ self.precision
        return weights, -0.5 * (weights * self.means).sum(dim=1) + self.log_prior

    @cached_property
    def _metric(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """In float64, for :meth:`distances`: ``precision``, ``W`` and ``k = diag(W means^T)`` (each class
        mean's squared norm in the metric)."""
        precision, means = self.precision.double(), self.means.double()
        weights = means @ precision
        return precision, weights, (weights * means).sum(dim=1)

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Linear scores ``(n, n_classes)`` of standardised descriptors ``z`` ``(n, dim)``."""
        weights, offsets = self._linear
        return z[:, self.mask].float() @ weights.T + offsets

    def posteriors(self, z: torch.Tensor) -> torch.Tensor:
        """Posterior over the classes, ``(n, n_classes)``."""
        return torch.softmax(self.scores(z), dim=1)

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance to the nearest class mean, per used dimension, ``(n,)``."""
        x = z[:, self.mask].double()
        precision, weights, norms = self._metric
        # (x - m)^T P (x - m) = x^T P x - 2 (W x)_c + k_c, in float64: three small products, no (n, classes, dim)
        squared = ((x @ precision) * x).sum(dim=1, keepdim=True) - 2.0 * x @ weights.T + norms
        return (squared.min(dim=1).values.clamp_min(0.0) / x.shape[1]).float()

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors to store, named ``<prefix>.<field>``."""
        return {
            f"{prefix}.mask": self.mask.to(torch.uint8),
            f"{prefix}.means": self.means.clone().contiguous(),
            f"{prefix}.precision": self.precision.contiguous(),
            f"{prefix}.log_prior": self.log_prior.clone().contiguous(),
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], prefix: str) -> LinearDiscriminant:
        """Read one stored with :meth:`to_tensors`.

        Raises:
            KeyError: a tensor is missing.
        """
        return cls(
            tensors[f"{prefix}.mask"].bool(),
            tensors[f"{prefix}.means"].float(),
            tensors[f"{prefix}.precision"].float(),
            tensors[f"{prefix}.log_prior"].float(),
        )


def _pooled(
    z: torch.Tensor, labels: torch.Tensor, n_classes: int, shrinkage: float, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mask, x, class means, shared covariance shrunk toward a scaled identity)``, in float64.

    Raises:
        ValueError: a class without a sample, or a shrinkage outside [0, 1].
    """
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    mask = torch.ones(z.shape[1], dtype=torch.bool) if mask is None else mask.bool()
    x = z[:, mask].double()
    counts = torch.bincount(labels, minlength=n_classes)
    if bool((counts == 0).any()):
        raise ValueError(f"classes {torch.nonzero(counts == 0).flatten().tolist()} have no sample")
    means = torch.stack([x[labels == k].mean(0) for k in range(n_classes)])
    within = x - means[labels]
    cov = within.T @ within / max(1, len(x) - n_classes)
    target = torch.trace(cov) / cov.shape[0] * torch.eye(cov.shape[0], dtype=cov.dtype)
    return mask, x, means, (1.0 - shrinkage) * cov + shrinkage * target


@dataclass(frozen=True)
class QuadraticDiscriminant:
    """Regularised quadratic discriminant on the dimensions ``mask`` selects of a standardised descriptor.

    Class ``k``'s covariance is ``(1 - pooling) * S_k + pooling * S``: its own (``S_k``) blended with the
    shared, shrunk one of :class:`LinearDiscriminant` (``S``); ``pooling`` 1 is that linear discriminant.

    Attributes:
        mask: ``(dim,)`` bool, the descriptor dimensions used.
        means: ``(n_classes, used)`` class means.
        precisions: ``(n_classes, used, used)`` inverse of each class's covariance.
        log_dets: ``(n_classes,)`` log-determinant of each class's covariance.
        log_prior: ``(n_classes,)`` log prior of each class.
    """

    mask: torch.Tensor
    means: torch.Tensor
    precisions: torch.Tensor
    log_dets: torch.Tensor
    log_prior: torch.Tensor

    @classmethod
    def fit(
        cls,
        z: torch.Tensor,
        labels: torch.Tensor,
        n_classes: int,
        shrinkage: float,
        log_prior: torch.Tensor,
        mask: torch.Tensor | None = None,
        pooling: float = 0.5,
    ) -> QuadraticDiscriminant:
        """Fit on standardised descriptors ``z`` ``(n, dim)`` with integer ``labels`` ``(n,)``.

        Raises:
            ValueError: a class without a sample, a shrinkage outside [0, 1] or a pooling outside (0, 1].
        """
        if not 0.0 < pooling <= 1.0:
            raise ValueError(f"pooling must be in (0, 1], got {pooling}")
        mask, x, means, shared = _pooled(z, labels, n_classes, shrinkage, mask)
        precisions, log_dets = [], []
        for k in range(n_classes):
            own = x[labels == k] - means[k]
            own_cov = own.T @ own / max(1, len(own) - 1)
            cov = (1.0 - pooling) * own_cov + pooling * shared
            precisions.append(torch.linalg.inv(cov))
            log_dets.append(torch.linalg.slogdet(cov).logabsdet)
        return cls(
            mask, means.float(), torch.stack(precisions).float(), torch.stack(log_dets).float(), log_prior.float()
        )

    def _squared(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance to every class mean in its own metric, ``(n, n_classes)``, float64."""
        diff = z[:, self.mask].double()[:, None, :] - self.means.double()[None]
        return torch.einsum("nkd,kde,nke->nk", diff, self.precisions.double(), diff).clamp_min(0.0)

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Quadratic scores ``(n, n_classes)``: the log density of each class plus its log prior (up to a
        constant)."""
        return (-0.5 * (self._squared(z) + self.log_dets.double()) + self.log_prior.double()).float()

    def posteriors(self, z: torch.Tensor) -> torch.Tensor:
        """Posterior over the classes, ``(n, n_classes)``."""
        return torch.softmax(self.scores(z).double(), dim=1).float()

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance to the nearest class mean, each in its own metric, per used dimension."""
        return (self._squared(z).min(dim=1).values / int(self.mask.sum())).float()

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors to store, named ``<prefix>.<field>``."""
        return {
            f"{prefix}.mask": self.mask.to(torch.uint8),
            f"{prefix}.means": self.means.clone().contiguous(),
            f"{prefix}.precisions": self.precisions.contiguous(),
            f"{prefix}.log_dets": self.log_dets.clone().contiguous(),
            f"{prefix}.log_prior": self.log_prior.clone().contiguous(),
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], prefix: str) -> QuadraticDiscriminant:
        """Read one stored with :meth:`to_tensors`.

        Raises:
            KeyError: a tensor is missing.
        """
        return cls(
            tensors[f"{prefix}.mask"].bool(),
            tensors[f"{prefix}.means"].float(),
            tensors[f"{prefix}.precisions"].float(),
            tensors[f"{prefix}.log_dets"].float(),
            tensors[f"{prefix}.log_prior"].float(),
        )


#: Either discriminant: what the perceiver reads.
Discriminant = LinearDiscriminant | QuadraticDiscriminant


def discriminant_from_tensors(tensors: Mapping[str, torch.Tensor], prefix: str) -> Discriminant:
    """The discriminant stored under ``prefix``: quadratic where it has per-class precisions, else linear.

    Raises:
        KeyError: a tensor is missing.
    """
    if f"{prefix}.precisions" in tensors:
        return QuadraticDiscriminant.from_tensors(tensors, prefix)
    return LinearDiscriminant.from_tensors(tensors, prefix)

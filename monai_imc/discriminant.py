"""A shrinkage linear discriminant over standardised descriptors: the perceiver's classifier.

The classes share one covariance (pooled within-class, shrunk toward a scaled identity); an image's
posterior over the classes is a softmax of linear scores, and its squared Mahalanobis distance to the
nearest class mean (per dimension) says whether it looks like the images the discriminant was fitted
on. It is stored as plain tensors (``<prefix>.mask``, ``.means``, ``.precision``, ``.log_prior``) so that a
prototype bank's safetensors file holds it.

Usage::

    lda = LinearDiscriminant.fit(z, labels, n_classes=46, shrinkage=0.2, log_prior=prior.log())
    post = lda.posteriors(z_new)           # (n, n_classes)
    dist = lda.distances(z_new)            # (n,)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["LinearDiscriminant"]


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
        precision = torch.linalg.inv((1.0 - shrinkage) * cov + shrinkage * target)
        return cls(mask, means.float(), precision.float(), log_prior.float())

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

"""A shrinkage linear discriminant over standardised descriptors: the perceiver's classifier.

The classes share one covariance (pooled within-class, shrunk toward a scaled identity); an image's
posterior over the classes is a softmax of linear scores, and its squared Mahalanobis distance to the
nearest class mean (per dimension) says whether it looks like the images the discriminant was fitted
on. A class may be a mixture of sub-classes (``groups`` at fitting: the kinds of image, e.g. radiographs
and cross-sections, each with its own mean; Hastie and Tibshirani's mixture discriminant analysis with
known sub-classes): a class's score is then the log-sum of its sub-classes' scores. It is stored as
plain tensors (``<prefix>.mask``, ``.means``, ``.precision``, ``.log_prior`` and, with sub-classes,
``.owner``) so that a prototype bank's safetensors file holds it.

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
        owner: with sub-classes, ``(n_rows,)`` the class of each row of ``means`` and ``log_prior`` (whose
            rows are then sub-classes, each prior the class's times its share of the class); ``None``: one
            row per class.
    """

    mask: torch.Tensor
    means: torch.Tensor
    precision: torch.Tensor
    log_prior: torch.Tensor
    owner: torch.Tensor | None = None

    @classmethod
    def fit(
        cls,
        z: torch.Tensor,
        labels: torch.Tensor,
        n_classes: int,
        shrinkage: float,
        log_prior: torch.Tensor,
        mask: torch.Tensor | None = None,
        groups: torch.Tensor | None = None,
    ) -> LinearDiscriminant:
        """Fit on standardised descriptors ``z`` ``(n, dim)`` with integer ``labels`` ``(n,)``.

        ``groups`` ``(n,)`` (optional, integers): the kind of image each descriptor comes from; every
        class is then a mixture of one sub-class per kind it holds samples of, with its own mean (the
        covariance stays shared), and the class prior is split by the kinds' shares of its samples.

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
        owner = None
        rows, row_prior = labels, log_prior.double()
        if groups is not None and int(groups.max()) > 0:
            n_groups = int(groups.max()) + 1
            sub = labels * n_groups + groups.long()
            present = torch.nonzero(torch.bincount(sub, minlength=n_classes * n_groups)).flatten()
            index = torch.full((n_classes * n_groups,), -1, dtype=torch.long)
            index[present] = torch.arange(len(present))
            rows, owner = index[sub], present // n_groups
            share = torch.bincount(rows, minlength=len(present)).double() / counts[owner].double()
            row_prior = log_prior.double()[owner] + share.log()
        n_rows = int(rows.max()) + 1
        means = torch.stack([x[rows == k].mean(0) for k in range(n_rows)])
        within = x - means[rows]
        cov = within.T @ within / max(1, len(x) - n_rows)
        target = torch.trace(cov) / cov.shape[0] * torch.eye(cov.shape[0], dtype=cov.dtype)
        precision = torch.linalg.inv((1.0 - shrinkage) * cov + shrinkage * target)
        return cls(mask, means.float(), precision.float(), row_prior.float(), owner)

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

    @property
    def n_classes(self) -> int:
        """Number of classes (rows of ``means`` without sub-classes)."""
        return self.means.shape[0] if self.owner is None else int(self.owner.max()) + 1

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Class scores ``(n, n_classes)`` of standardised descriptors ``z`` ``(n, dim)``: log prior plus
        log-likelihood up to a shared constant (with sub-classes, the log-sum over each class's)."""
        weights, offsets = self._linear
        scores = z[:, self.mask].float() @ weights.T + offsets
        if self.owner is None:
            return scores
        top = scores.max(dim=1, keepdim=True).values
        summed = torch.zeros(len(scores), self.n_classes).index_add_(1, self.owner, (scores - top).exp())
        return summed.log() + top

    def posteriors(self, z: torch.Tensor) -> torch.Tensor:
        """Posterior over the classes, ``(n, n_classes)``."""
        return torch.softmax(self.scores(z), dim=1)

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance to the nearest class (or sub-class) mean, per used dimension,
        ``(n,)``."""
        x = z[:, self.mask].double()
        precision, weights, norms = self._metric
        # (x - m)^T P (x - m) = x^T P x - 2 (W x)_c + k_c, in float64: three small products, no (n, classes, dim)
        squared = ((x @ precision) * x).sum(dim=1, keepdim=True) - 2.0 * x @ weights.T + norms
        return (squared.min(dim=1).values.clamp_min(0.0) / x.shape[1]).float()

    def keep_classes(self, keep: torch.Tensor) -> LinearDiscriminant:
        """The discriminant over the classes ``keep`` (indices, in their order) only: their rows (every
        sub-class of a kept class), the prior renormalised over them; the covariance stays as fitted."""
        owner = torch.arange(self.means.shape[0]) if self.owner is None else self.owner
        renumber = torch.full((self.n_classes,), -1, dtype=torch.long)
        renumber[keep.long()] = torch.arange(len(keep))
        rows = torch.nonzero(renumber[owner] >= 0).flatten()
        prior = self.log_prior[rows]
        return LinearDiscriminant(
            self.mask,
            self.means[rows].clone(),
            self.precision,
            prior - torch.logsumexp(prior, dim=0),
            None if self.owner is None else renumber[owner[rows]],
        )

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors to store, named ``<prefix>.<field>``."""
        out = {
            f"{prefix}.mask": self.mask.to(torch.uint8),
            f"{prefix}.means": self.means.clone().contiguous(),
            f"{prefix}.precision": self.precision.contiguous(),
            f"{prefix}.log_prior": self.log_prior.clone().contiguous(),
        }
        if self.owner is not None:
            out[f"{prefix}.owner"] = self.owner.to(torch.int64).contiguous()
        return out

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
            tensors[f"{prefix}.owner"].long() if f"{prefix}.owner" in tensors else None,
        )

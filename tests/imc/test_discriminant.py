"""The perceiver's discriminant with kinds of image (a mixture of sub-classes) and the grouping of images."""

from __future__ import annotations

import pytest
import torch

from monai_imc.discriminant import LinearDiscriminant
from monai_imc.perceiver_choice import image_kinds


def two_kinds(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Descriptors of two kinds of image far apart on dimension 0, where class 1 moves dimension 1 up in
    kind 0 and down in kind 1: one mean per class cannot tell the classes apart, one per kind can."""
    g = torch.Generator().manual_seed(seed)
    kind = torch.arange(n) % 2
    label = (torch.arange(n) // 2) % 2
    z = 0.3 * torch.randn(n, 6, generator=g)
    z[:, 0] += 4.0 * kind
    z[:, 1] += torch.where(kind == 0, 1.0, -1.0) * label
    return z, label, kind


def test_image_kinds_finds_the_groups_largest_first() -> None:
    g = torch.Generator().manual_seed(1)
    small, large = torch.randn(30, 20, generator=g) + 5.0, torch.randn(70, 20, generator=g)
    kinds = image_kinds(torch.cat([small, large]), 2)
    assert kinds[30:].eq(0).all() and kinds[:30].eq(1).all(), "the 70 images are kind 0, the 30 kind 1"
    assert image_kinds(torch.cat([small, large]), 1).eq(0).all()
    assert torch.equal(image_kinds(torch.cat([small, large]), 3), image_kinds(torch.cat([small, large]), 3))


def test_a_mixture_separates_what_one_mean_per_class_cannot() -> None:
    z, label, kind = two_kinds()
    prior = torch.tensor([0.5, 0.5]).log()
    plain = LinearDiscriminant.fit(z, label, 2, 0.0, prior)
    mixture = LinearDiscriminant.fit(z, label, 2, 0.0, prior, groups=kind)
    test_z, test_label, _ = two_kinds(seed=1)
    plain_right = float((plain.posteriors(test_z).argmax(1) == test_label).float().mean())
    mixture_right = float((mixture.posteriors(test_z).argmax(1) == test_label).float().mean())
    assert plain_right < 0.7 and mixture_right > 0.9  # the Bayes rate: 95% (a 1-unit step in 0.3 sd noise)
    assert mixture.means.shape == (4, 6) and sorted(mixture.owner.tolist()) == [0, 0, 1, 1]
    assert mixture.n_classes == 2 and mixture.scores(test_z).shape == (len(test_z), 2)
    assert torch.allclose(mixture.posteriors(test_z).sum(1), torch.ones(len(test_z)))
    # each class's prior is split over its kinds by their shares of its samples
    assert float(mixture.log_prior.exp().sum()) == pytest.approx(1.0)


def test_one_kind_is_the_plain_discriminant_and_a_mixture_survives_storage() -> None:
    z, label, kind = two_kinds()
    prior = torch.tensor([0.3, 0.7]).log()
    plain = LinearDiscriminant.fit(z, label, 2, 0.1, prior)
    one = LinearDiscriminant.fit(z, label, 2, 0.1, prior, groups=torch.zeros_like(kind))
    assert one.owner is None and torch.allclose(one.posteriors(z), plain.posteriors(z), atol=1e-6)
    mixture = LinearDiscriminant.fit(z, label, 2, 0.1, prior, groups=kind)
    again = LinearDiscriminant.from_tensors(mixture.to_tensors("p"), "p")
    assert torch.equal(again.owner, mixture.owner)
    assert torch.allclose(again.posteriors(z), mixture.posteriors(z), atol=1e-6)
    assert torch.allclose(again.distances(z), mixture.distances(z), atol=1e-6)


def test_keeping_classes_keeps_their_kinds_and_their_posteriors() -> None:
    z, label, kind = two_kinds()
    label = label + 2 * (torch.arange(len(z)) % 3 == 0).long()  # four classes, each of both kinds
    mixture = LinearDiscriminant.fit(z, label, 4, 0.1, torch.full((4,), 0.25).log(), groups=kind)
    keep = torch.tensor([0, 1, 3])
    kept = mixture.keep_classes(keep)
    assert kept.n_classes == 3 and sorted(set(kept.owner.tolist())) == [0, 1, 2]
    assert kept.means.shape[0] == mixture.means.shape[0] - int((mixture.owner == 2).sum())
    assert float(kept.log_prior.exp().sum()) == pytest.approx(1.0)
    # the shared covariance stays: the kept classes' posteriors are the full ones restricted and renormalised
    full = mixture.posteriors(z)[:, keep]
    assert torch.allclose(kept.posteriors(z), full / full.sum(1, keepdim=True), atol=1e-5)
    plain = LinearDiscriminant.fit(z, label, 4, 0.1, torch.full((4,), 0.25).log()).keep_classes(keep)
    assert plain.owner is None and plain.means.shape[0] == 3

"""Scores of a set of generated digits under a classifier of this package: no Inception, no download.

- :func:`class_probabilities_score`: the classifier score (an Inception Score with the package's CNN in place of
  Inception) and the class coverage, from the class probabilities of the samples.
- :func:`class_shares`: the share of the samples the classifier puts in each class (its argmax).
- :func:`scores`: all of them for a set of samples beside real images, as ``dlmnist gan-score`` and a GAN's
  ``dlmnist test`` report them.
- :func:`frechet_distances`: the Fréchet distance between Gaussians fitted to the classifier's features of two
  image sets (an FID with the CNN's encoder in place of Inception), computed by torchmetrics'
  ``FrechetInceptionDistance`` with :class:`ClassifierFeatures` as its feature extractor.

Every number is comparable only between sets scored by the same classifier checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn

from dlmnist.data.sources import MNIST_MEAN, MNIST_STD


def class_shares(p: torch.Tensor) -> torch.Tensor:
    """The share of rows of probabilities ``p`` (N, K) whose most probable class is each class: ``(K,)``, sums to 1
    (ties go to the lower class)."""
    return torch.bincount(p.argmax(dim=1), minlength=p.shape[1]).double() / len(p)


def class_probabilities_score(p: torch.Tensor) -> tuple[float, int]:
    """``(exp(mean KL(p(y|x) || p(y))), classes with >= 1% of the argmax votes)`` of probabilities ``(N, K)``."""
    p = p.double()
    marginal = p.mean(dim=0, keepdim=True)
    kl = (torch.xlogy(p, p) - torch.xlogy(p, marginal)).sum(dim=1)
    return kl.mean().exp().item(), int((class_shares(p) >= 0.01).sum().item())


class ClassifierFeatures(nn.Module):
    """The feature extractor of :func:`frechet_distances`: pixels in [0, 1] ``(B, 1, 28, 28)`` -> the encoder's
    features ``(B, num_features)`` (float64) of inputs standardised with MNIST's mean and std (as ``dlmnist gan-score``
    feeds the classifier). Always in eval mode; ``num_features`` (the encoder's ``latent_dim``) spares torchmetrics
    its trial call on a 299x299 image."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        if not isinstance(getattr(encoder, "latent_dim", None), int):
            raise ValueError(f"encoder {type(encoder).__name__} has no integer latent_dim: its feature count")
        self.encoder = encoder
        self.num_features = encoder.latent_dim
        self.train(False)

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)  # batch norm and dropout as at inference, whatever the caller asks

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder((pixels - MNIST_MEAN) / MNIST_STD).flatten(1).double()  # the distance comes in float64


@torch.no_grad()
def frechet_distances(
    features: nn.Module, reference: Iterable[torch.Tensor], *others: Iterable[torch.Tensor]
) -> list[float]:
    """The Fréchet distance between the ``features`` of the image batches ``reference`` and those of each of
    ``others``: ``||mu_r - mu_o||^2 + tr(S_r + S_o - 2 (S_r S_o)^(1/2))`` of the feature means and covariances
    (torchmetrics' ``FrechetInceptionDistance``, sums in float64). ``features`` maps a batch to ``(B, D)`` and has
    an integer ``num_features`` (D), e.g. :class:`ClassifierFeatures`. The reference's features are taken once."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
    for x in reference:
        fid.update(x, real=True)
    distances = []
    for batches in others:
        for x in batches:
            fid.update(x, real=False)
        distances.append(float(fid.compute()))
        fid.reset()  # the other set's features only: reset_real_features=False keeps the reference's
    return distances


@torch.no_grad()
def probabilities(classifier: nn.Module, batches: Iterable[torch.Tensor]) -> torch.Tensor:
    """The classifier's class probabilities ``(N, K)`` of batches of pixels in [0, 1], standardised as MNIST."""
    classifier.eval()
    return torch.cat([classifier((x - MNIST_MEAN) / MNIST_STD).softmax(dim=-1) for x in batches])


def scores(
    classifier: nn.Module, real: list[torch.Tensor], fake: list[torch.Tensor], train: list[torch.Tensor] | None = None
) -> dict[str, Any]:
    """Every score of the batches of samples ``fake`` beside the real (test) images ``real``, pixels in [0, 1]:
    ``classifier_score``, ``class_coverage``, ``class_share`` (per class), ``min_class_share``, ``fid`` (to
    ``real``), ``real_classifier_score``; with ``train`` (real training images) also ``real_fid`` (``real`` to
    ``train``). The real images' features are taken once for both distances."""
    p = probabilities(classifier, fake)
    value, coverage = class_probabilities_score(p)
    shares = class_shares(p).tolist()
    others = [fake] if train is None else [fake, train]
    fid, *real_fid = frechet_distances(ClassifierFeatures(classifier.encoder), real, *others)
    result = {
        "classifier_score": value,
        "class_coverage": coverage,
        "class_share": shares,
        "min_class_share": min(shares),
        "fid": fid,
        "real_classifier_score": class_probabilities_score(probabilities(classifier, real))[0],
    }
    return {**result, "real_fid": real_fid[0]} if real_fid else result


class SampleScorer:
    """:func:`scores` of a generator against the test images it is handed batch by batch (``add_real``), with as
    many samples as test images: what a GAN's ``dlmnist test`` logs (:class:`dlmnist.models.GAN`,
    ``score_classifier``)."""

    def __init__(self, classifier: nn.Module) -> None:
        self.classifier = classifier
        self.real: list[torch.Tensor] = []

    def add_real(self, pixels: torch.Tensor) -> None:
        self.real.append(pixels.detach())

    @torch.no_grad()
    def scores(self, sample, batch_size: int = 1000) -> dict[str, Any]:
        """``sample(n)`` -> ``(n, 1, 28, 28)`` pixels in [0, 1]; {} when no test image was added."""
        n = sum(len(x) for x in self.real)
        if n == 0:
            return {}
        return scores(self.classifier, self.real, [sample(min(batch_size, n - i)) for i in range(0, n, batch_size)])

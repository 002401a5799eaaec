"""The KL term and the log-likelihoods the VAE trains with, in nats, summed over the event dimensions.

The general Gaussian and the Bernoulli KL divergences, for reading and exercises, are in
``dlmnist.reference.divergences``.

Conventions: ``0 log 0 = 0`` (``torch.xlogy``), so a Bernoulli KL is exactly 0 when both distributions put
all mass on the same outcome and +inf when the first puts mass where the second has none; never NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mean, exp(logvar)) || N(0, I) ) for diagonal Gaussians (B, D) -> (B,).

    Per dimension: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2) (Kingma & Welling, 2014, appendix B).
    """
    return 0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar).sum(dim=-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) summed over all but the first dimension: (B, ...) -> (B,). ``x`` in [0, 1]."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


def gaussian_log_likelihood(mean: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed over all but the first dimension: (B, ...) -> (B,)."""
    ll = -0.5 * LOG_2PI - log_sigma - 0.5 * ((x - mean) / log_sigma.exp()).pow(2)
    return ll.flatten(1).sum(dim=1)


def log_normal(z: torch.Tensor, mean: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) over the last dimension (..., D) -> (...); standard normal by default."""
    if mean is None:
        return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(dim=-1)

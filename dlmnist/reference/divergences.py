"""KL divergences for reading and exercises (no model trains with these): Gaussian against Gaussian, Bernoulli.

Conventions: ``0 log 0 = 0`` (``torch.xlogy``), so a Bernoulli KL is exactly 0 when both distributions put
all mass on the same outcome and +inf when the first puts mass where the second has none; never NaN. The
VAE's own KL against N(0, I) is ``dlmnist.losses.gaussian_kl_standard_normal``.
"""

from __future__ import annotations

import torch


def gaussian_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL( N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)) ) for diagonal Gaussians (..., D) -> (...)."""
    kl = logvar2 - logvar1 + (logvar1.exp() + (mean1 - mean2).pow(2)) / logvar2.exp() - 1.0
    return 0.5 * kl.sum(dim=-1)


def bernoulli_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Element-wise KL( Bernoulli(p) || Bernoulli(q) ) = p log(p/q) + (1-p) log((1-p)/(1-q)).

    Edge cases follow the mathematics: ``p == q`` in {0, 1} gives 0; ``q`` in {0, 1} with ``p != q`` gives +inf.
    """
    p, q = torch.broadcast_tensors(p, q)
    return torch.xlogy(p, p) - torch.xlogy(p, q) + torch.xlogy(1 - p, 1 - p) - torch.xlogy(1 - p, 1 - q)

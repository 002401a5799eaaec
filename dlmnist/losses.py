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


@torch.no_grad()
def bernoulli_log_likelihood_eval(
    logits: torch.Tensor, x: torch.Tensor, group: int = 16, work: torch.Tensor | None = None
) -> torch.Tensor:
    """log p(x | logits) of S samples per image (B, S, D), images ``x`` (B, D) -> (B, S), for evaluation.

    The same value as :func:`bernoulli_log_likelihood`, several times faster on a CPU: no autograd, and per pixel
    ``x log sigmoid(l) + (1 - x) log sigmoid(-l) = (x - 1/2) l - |l| / 2 - log(1 + exp(-|l|))``, where the first
    sum is one matrix-vector product per image and the rest works in place. torch computes ``log1p`` and
    ``softplus`` one element at a time on a CPU while ``exp`` and ``log`` are vectorised, so the last sum is taken
    as the log of products of ``group`` factors ``1 + exp(-|l|)`` in (1, 2] (each at most 2 ** group): one ``log``
    per ``group`` pixels. ``logits`` may be bfloat16 (summed in float32); they are overwritten when float32 and
    no ``work`` is given: a float32 tensor of as many elements, reused across calls (a fresh one costs page faults).
    """
    a = logits.float() if work is None else work.view(logits.shape).copy_(logits)
    b, s, d = a.shape
    total = torch.bmm(a, (x.float() - 0.5).unsqueeze(-1)).squeeze(-1)  # sum (x - 1/2) l  (B, S)
    a.abs_()
    total -= 0.5 * a.sum(dim=-1)
    torch.exp(a.neg_(), out=a).add_(1.0)  # 1 + exp(-|l|)
    if d % group:
        a = F.pad(a, (0, group - d % group), value=1.0)
    return total - a.view(b, s, -1, group).prod(dim=-1).log_().sum(dim=-1)


def gaussian_log_likelihood(mean: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed over all but the first dimension: (B, ...) -> (B,)."""
    ll = -0.5 * LOG_2PI - log_sigma - 0.5 * ((x - mean) / log_sigma.exp()).pow(2)
    return ll.flatten(1).sum(dim=1)


def log_normal(z: torch.Tensor, mean: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) over the last dimension (..., D) -> (...); standard normal by default."""
    if mean is None:
        return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(dim=-1)


def encode_with_jacobian_norm(encoder, x: torch.Tensor, projections: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(code, estimate of ||d code / d x||_F^2 per image)`` for the contractive autoencoder's penalty.

    Hutchinson's estimator: for ``v ~ N(0, I)`` in code space, ``E ||J^T v||^2 = trace(J J^T) = ||J||_F^2``. Each
    projection is one vector-Jacobian product (``torch.func.vjp``: one backward pass through the encoder, the
    forward pass is shared with the code), so the cost does not grow with the input size (784) or the code size,
    unlike the full Jacobian; the estimate is unbiased and differentiable (the penalty trains the encoder).
    For a single dense sigmoid layer the closed form ``sum_j (h_j (1 - h_j))^2 ||W_j||^2`` is exact; this works
    for any encoder (conv, several layers).
    """
    code, vjp_fn = torch.func.vjp(encoder, x)
    total = code.new_zeros(())
    for _ in range(projections):
        (jt_v,) = vjp_fn(torch.randn_like(code))  # (B, C, H, W): v^T J for each image's own v
        total = total + jt_v.flatten(1).square().sum(dim=1).mean()
    return code, total / projections

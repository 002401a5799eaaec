"""KL terms and likelihoods against values computed by hand."""

from __future__ import annotations

import math

import torch

from dlmnist.losses import bernoulli_log_likelihood, gaussian_kl_standard_normal, gaussian_log_likelihood, log_normal
from dlmnist.reference.divergences import bernoulli_kl, gaussian_kl


def test_bernoulli_kl_hand_values_both_ways():
    p, q = torch.tensor(0.4, dtype=torch.float64), torch.tensor(0.8, dtype=torch.float64)
    # 0.4 ln(0.4/0.8) + 0.6 ln(0.6/0.2) = -0.4 ln 2 + 0.6 ln 3 = 0.381908...
    assert math.isclose(bernoulli_kl(p, q).item(), 0.3819085009768877, rel_tol=1e-12)
    # 0.8 ln(0.8/0.4) + 0.2 ln(0.2/0.6) = 0.8 ln 2 - 0.2 ln 3 = 0.334795...
    assert math.isclose(bernoulli_kl(q, p).item(), 0.33479528671433423, rel_tol=1e-12)
    assert bernoulli_kl(p, p).item() == 0.0


def test_bernoulli_kl_edge_cases_are_zero_or_inf_never_nan():
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0])
    q = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    kl = bernoulli_kl(p, q)
    assert not kl.isnan().any()
    assert kl[:2].tolist() == [0.0, 0.0]
    assert kl[2:6].isinf().all() and (kl[2:6] > 0).all()
    assert torch.allclose(kl[6:], torch.full((2,), math.log(2.0)))  # certain vs fair coin: ln 2


def test_gaussian_kl_hand_values():
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension; KL(N(0, e) || N(0, 1)) = (e - 1 - 1) / 2
    mean, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert torch.allclose(gaussian_kl_standard_normal(mean, logvar), torch.tensor([0.5 + (math.e - 2) / 2]))
    zeros = torch.zeros_like(mean)
    assert torch.allclose(gaussian_kl(mean, logvar, zeros, zeros), gaussian_kl_standard_normal(mean, logvar))
    assert gaussian_kl(mean, logvar, mean, logvar).abs().max() < 1e-7
    # against torch.distributions on random values
    m1, l1, m2, l2 = torch.randn(4, 3, 5).unbind(0)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, (0.5 * l1).exp()), torch.distributions.Normal(m2, (0.5 * l2).exp())
    ).sum(-1)
    assert torch.allclose(gaussian_kl(m1, l1, m2, l2), ref, atol=1e-5)


def test_log_likelihoods():
    x = torch.tensor([[1.0, 0.0]])
    logits = torch.log(torch.tensor([[0.8 / 0.2, 0.4 / 0.6]]))  # p = 0.8, 0.4
    assert torch.allclose(bernoulli_log_likelihood(logits, x), torch.tensor([math.log(0.8) + math.log(0.6)]))
    ll = gaussian_log_likelihood(torch.zeros(1, 2), torch.tensor(0.0), x)
    assert torch.allclose(ll, torch.tensor([-math.log(2 * math.pi) - 0.5]))
    z = torch.randn(6, 3)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert torch.allclose(log_normal(z), ref) and torch.allclose(log_normal(z, torch.zeros(3), torch.zeros(3)), ref)

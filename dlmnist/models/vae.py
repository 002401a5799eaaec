"""Variational autoencoder (Kingma & Welling, 2014) with an importance-weighted NLL estimate (Burda et al., 2016)."""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info

from dlmnist.compat import cpu_native_bf16
from dlmnist.losses import (
    bernoulli_log_likelihood,
    bernoulli_log_likelihood_eval,
    gaussian_kl_standard_normal,
    gaussian_log_likelihood,
    log_normal,
)
from dlmnist.models.base import Model, Stage
from dlmnist.models.optim import Optim
from dlmnist.models.vae_figures import log_vae_figures
from dlmnist.utils.checks import NonNegativeFloat, NonNegativeInt, PositiveInt, check

Likelihood = Literal["bernoulli", "gaussian"]
NLLPrecision = Literal["32-true", "bf16-mixed"]


@functools.cache
def _say_float32_nll() -> None:
    rank_zero_info("nll_precision bf16-mixed: this CPU has no native bf16, so the NLL is computed in float32")


class VAE(Model):
    """``encoder`` -> features -> mean and log-variance of q(z|x) -> z = mean + sigma * eps -> ``decoder`` -> p(x|z).

    The loss per image is ``recon + beta_t * kl`` with ``recon = -log p(x|z)`` (one sample of z) and
    ``kl = KL(q(z|x) || N(0, I))``; ``beta_t`` rises linearly from 0 to ``beta`` over ``kl_warmup_steps``.
    ``elbo = -(recon + kl)`` is logged whatever ``beta`` is, so runs with different ``beta`` compare;
    ``best.ckpt`` is chosen by ``val/loss`` (the objective with the full ``beta``), not by the ELBO.

    Args:
        encoder: image -> features ``(B, encoder.latent_dim)`` (e.g. ``DenseEncoder`` with ``latent_dim: 400``).
        decoder: ``(B, latent_dim)`` -> image ``(B, 1, 28, 28)``; logits (no output activation) for ``bernoulli``.
        latent_dim: size of z; must equal ``decoder.latent_dim``.
        likelihood: ``bernoulli`` (cross-entropy on [0, 1] pixels) or ``gaussian`` (learned scalar sigma).
        binarize: model binary images: training pixels are resampled as Bernoulli(intensity) at every step
            (dynamic binarisation); validation/test pixels are binarised once per batch with a fixed seed, so
            the reported ELBO and NLL are those of one fixed binary test set. False: grey pixels as targets.
        beta: weight of the KL term (1: the ELBO; 0: a plain autoencoder with a noisy code).
        kl_warmup_steps: optimizer steps over which the KL weight grows linearly from 0 to ``beta`` (0: none).
        nll_samples: importance samples k of the test-time NLL estimate ``test/nll_iw`` (nats).
        nll_precision: ``bf16-mixed`` (the default) runs the decoder of that estimate under bfloat16 autocast,
            the likelihood sums in float32: about twice as fast on a CPU with native bf16 (AVX-512 BF16 or AMX)
            or a GPU, and within 0.01 nats of float32 over the test set; a CPU without native bf16 computes in
            float32 and says so. ``32-true``: float32 throughout.
        eval_seed: seed of the validation/test binarisation and of the pictures.
        optim: optimizer and schedule (:class:`~dlmnist.models.optim.Optim`; here Adam with a cosine schedule).
    """

    code_description = "posterior mean of z"
    # best.ckpt by val/loss (the base's monitor): the beta-weighted objective, -ELBO for beta = 1, recon for beta = 0

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: PositiveInt = 16,
        likelihood: Likelihood = "bernoulli",
        binarize: bool = True,
        beta: NonNegativeFloat = 1.0,
        kl_warmup_steps: NonNegativeInt = 0,
        nll_samples: PositiveInt = 100,
        nll_precision: NLLPrecision = "bf16-mixed",
        eval_seed: int = 0,
        optim: Optim = Optim(lr=1e-3, name="adam", schedule="cosine"),
    ) -> None:
        super().__init__(optim=optim)
        check(PositiveInt, latent_dim=latent_dim, nll_samples=nll_samples)
        check(NonNegativeFloat, beta=beta)
        check(NonNegativeInt, kl_warmup_steps=kl_warmup_steps)
        check(Likelihood, likelihood=likelihood)
        check(NLLPrecision, nll_precision=nll_precision)
        if not hasattr(encoder, "latent_dim"):
            raise ValueError(f"encoder {type(encoder).__name__} has no latent_dim attribute (its feature size)")
        if getattr(decoder, "latent_dim", latent_dim) != latent_dim:
            raise ValueError(f"latent_dim={latent_dim} but the decoder takes latent_dim={decoder.latent_dim}")
        last = [m for m in decoder.modules() if not list(m.children())][-1]
        if likelihood == "bernoulli" and isinstance(last, nn.Sigmoid):
            raise ValueError("likelihood='bernoulli' needs a decoder that outputs logits: set out_activation: null")
        self.save_hparams(("encoder", "decoder"))
        self.encoder, self.decoder = encoder, decoder
        self.to_mean = nn.Linear(encoder.latent_dim, latent_dim)
        self.to_logvar = nn.Linear(encoder.latent_dim, latent_dim)
        self.log_sigma = nn.Parameter(torch.zeros(())) if likelihood == "gaussian" else None
        self._test_images: tuple[torch.Tensor, torch.Tensor] | None = None
        self._test_codes: list[tuple[torch.Tensor, torch.Tensor]] = []

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)  # (B, features)
        return self.to_mean(h), self.to_logvar(h)  # (B, latent_dim) each

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean of z (B, latent_dim): what latent-space analysis measures for a VAE."""
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image in [0, 1] (B, 1, 28, 28) for codes z (B, latent_dim)."""
        out = self.decoder(z)
        return out.sigmoid() if self.log_sigma is None else out.clamp(0.0, 1.0)

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) (B,) from the decoder's raw output ``out`` (logits, or the Gaussian mean)."""
        if self.log_sigma is None:
            return bernoulli_log_likelihood(out, x)
        return gaussian_log_likelihood(out, self.log_sigma, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])  # (B, 1, 28, 28) -> reconstruction from the posterior mean

    def targets(self, x: torch.Tensor, stage: str, batch_idx: int = 0) -> torch.Tensor:
        """The images modelled: binarised (fresh noise in training, seeded per batch otherwise) or as given."""
        x = x.clamp(0.0, 1.0)
        if not self.hparams.binarize:
            return x
        if stage == "train":
            return torch.bernoulli(x)
        g = torch.Generator().manual_seed(self.hparams.eval_seed * 100_003 + batch_idx)
        return (torch.rand(x.shape, generator=g).to(x.device) < x).to(x.dtype)

    def kl_weight(self, step: int) -> float:
        """The KL weight at optimizer step ``step``: ``beta``, reached linearly over ``kl_warmup_steps``."""
        steps = self.hparams.kl_warmup_steps
        return self.hparams.beta * (min(1.0, step / steps) if steps else 1.0)

    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        x, y = batch
        grey = x.clamp(0.0, 1.0)
        if stage == "test" and batch_idx == 0:
            self._test_images = (grey[:64], y[:64])
        x = self.targets(x, stage, batch_idx)  # (B, 1, 28, 28)
        mean, logvar = self.encode(x)  # (B, L)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)  # reparameterised sample (B, L)
        recon = -self.log_likelihood(self.decoder(z), x)  # (B,)
        kl = gaussian_kl_standard_normal(mean, logvar)  # (B,)
        weight = self.kl_weight(self.global_step) if stage == "train" else self.hparams.beta
        loss = (recon + weight * kl).mean()
        values = {"loss": loss, "recon": recon.mean(), "kl": kl.mean(), "elbo": -(recon + kl).mean()}
        for name, v in values.items():
            self.log_stage(stage, name, v, prog_bar=name in ("loss", "elbo"), batch_size=len(x))
        if stage == "test":  # test/l1: the posterior mean's picture against the grey test image, as an AE's
            self.log_stage(stage, "l1", F.l1_loss(self.decode(mean), grey), batch_size=len(x))
            nll = self.importance_weighted_nll(x, self.hparams.nll_samples)
            self.log_stage(stage, "nll_iw", nll.mean(), batch_size=len(x))
            if self.hparams.latent_dim == 2:
                self._test_codes.append((mean.detach().cpu(), y.cpu()))
        return loss

    def on_test_epoch_end(self) -> None:
        if self.trainer.is_global_zero and self._test_images is not None:
            codes = None
            if self._test_codes:
                codes = tuple(torch.cat(parts) for parts in zip(*self._test_codes))  # (N, 2) means, (N,) digits
            log_vae_figures(self, *self._test_images, codes=codes)
        self._test_images, self._test_codes = None, []

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.encode(batch[0])[0]  # posterior means (B, latent_dim)

    @torch.no_grad()
    def importance_weighted_nll(self, x: torch.Tensor, k: int, rows: int = 4_000) -> torch.Tensor:
        """-log p(x) (B,) in nats estimated with k importance samples from q(z|x) (Burda et al., 2016):

        log p(x) ~ log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x); a lower bound that tightens as k grows
        (k = 1 gives the ELBO). The samples go through the decoder about ``rows`` (sample, image) pairs at a time:
        the same numbers whatever ``rows`` is (one stream of z); the decoder's matrix products and the 784
        log-likelihood terms per sample are the work (see :meth:`log_weights`).
        """
        mean, logvar = self.encode(x)  # (B, L)
        std = (0.5 * logvar).exp()
        log_w = []
        chunk = max(1, rows // max(len(x), 1))
        bf16 = self.nll_in_bf16(x.device)
        work = torch.empty(chunk * len(x) * x[0].numel(), device=x.device)  # float32 logits, reused by every chunk
        for c in [min(chunk, k - i) for i in range(0, k, chunk)]:
            eps = torch.randn(c, *mean.shape, device=mean.device, dtype=mean.dtype)  # (c, B, L)
            # log q(z|x) = log N(eps; 0, I) - sum log std, from eps: (z - mean) / std loses eps wherever std is
            # below the float resolution of mean (beta = 0 trains such codes), and log q with it
            log_q = log_normal(eps) - 0.5 * logvar.sum(-1)  # (c, B)
            log_w.append(self.log_weights(x, mean + std * eps, log_q, bf16, work))  # (c, B)
        return -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))  # (B,)

    def nll_in_bf16(self, device: torch.device) -> bool:
        """Whether the NLL's decoder runs in bfloat16: ``nll_precision: bf16-mixed`` on a GPU or a native-bf16 CPU."""
        if self.hparams.nll_precision != "bf16-mixed":
            return False
        if device.type != "cpu" or cpu_native_bf16():
            return True
        _say_float32_nll()
        return False

    @torch.no_grad()
    def log_weights(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        log_q: torch.Tensor,
        bf16: bool = False,
        work: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """log p(x|z) + log p(z) - log q(z|x) (c, B) of samples z (c, B, L) of q(z|x), given ``log_q`` (c, B), images x.

        A Bernoulli likelihood uses :func:`~dlmnist.losses.bernoulli_log_likelihood_eval` (the same value as the
        training loss's, several times faster without autograd). ``bf16``: the decoder alone under bfloat16
        autocast; everything after it in float32 (autocast off: a bf16 sum over 784 pixels is off by nats).
        """
        c, b = z.shape[:2]
        device = x.device.type
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            if self.log_sigma is None:  # image-major rows: one matrix-vector product per image in the likelihood
                out = self.decoder(z.transpose(0, 1).reshape(b * c, -1))  # (B * c, 1, 28, 28)
            else:
                out = self.decoder(z.flatten(0, 1))  # (c * B, 1, 28, 28)
        with torch.autocast(device, enabled=False):
            if self.log_sigma is None:
                work = None if work is None else work[: out.numel()]
                log_px = bernoulli_log_likelihood_eval(out.view(b, c, -1), x.reshape(b, -1), work=work).T  # (c, B)
            else:
                log_px = self.log_likelihood(out.float(), x.expand(c, *x.shape).flatten(0, 1)).view(c, b)
            return log_px + log_normal(z) - log_q

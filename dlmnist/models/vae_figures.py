"""The VAE's test-time pictures: prior samples, reconstructions, samples of q(z|x), interpolations, and for 2-d
codes the manifold."""

from __future__ import annotations

import torch

from dlmnist.utils.figures import log_figure
from dlmnist.utils.latent_figures import image_grid_figure, latent_scatter_figure


@torch.no_grad()
def log_vae_figures(
    vae, images: torch.Tensor, labels: torch.Tensor, codes: tuple[torch.Tensor, torch.Tensor] | None = None
) -> None:
    """Log the pictures of a VAE for test ``images`` (N, 1, 28, 28) in [0, 1] and, if given, all test codes."""
    trainer, latent = vae.trainer, vae.hparams.latent_dim
    was_training = vae.training
    vae.eval()
    g = torch.Generator().manual_seed(vae.hparams.eval_seed)
    dev = images.device

    z = torch.randn(64, latent, generator=g).to(dev)  # (64, L) from the prior N(0, I)
    log_figure(trainer, "test/prior_samples", image_grid_figure(vae.decode(z).cpu(), 8, "decoded samples z ~ N(0, I)"))

    x = images[:12]
    rec = vae(x)  # (12, 1, 28, 28) from the posterior means
    log_figure(
        trainer,
        "test/reconstructions",
        image_grid_figure(torch.cat([x, rec]).cpu(), 2, "test images (top) and reconstructions", ["input", "recon"]),
    )

    x = images[:6]  # q(z|x) of one image is a distribution: the input, then 7 of its samples decoded
    mean, logvar = vae.encode(x)
    z = mean.unsqueeze(1) + (0.5 * logvar).exp().unsqueeze(1) * torch.randn(6, 7, latent, generator=g).to(dev)
    grid = torch.cat([x.unsqueeze(1), vae.decode(z.flatten(0, 1)).view(6, 7, *x.shape[1:])], dim=1)  # (6, 8, ...)
    fig = image_grid_figure(grid.flatten(0, 1).cpu(), 6, "test image, then 7 decoded samples z ~ q(z|x)")
    log_figure(trainer, "test/posterior_samples", fig)

    pairs = _different_digit_pairs(labels, 4)
    mean = vae.encode(images)[0]  # (N, L)
    t = torch.linspace(0, 1, 10, device=dev).view(1, 10, 1)
    zs = (1 - t) * mean[[a for a, _ in pairs]].unsqueeze(1) + t * mean[[b for _, b in pairs]].unsqueeze(1)  # (P,10,L)
    grid = vae.decode(zs.flatten(0, 1)).cpu()
    log_figure(trainer, "test/interpolation", image_grid_figure(grid, len(pairs), "linear interpolation of codes"))

    if latent == 2:
        n = 15
        q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))  # normal quantiles
        zz = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), dim=-1).view(-1, 2).to(dev)  # (n*n, 2)
        fig = image_grid_figure(vae.decode(zz).cpu(), n, "decoded manifold: z on a grid of N(0,1) quantiles")
        log_figure(trainer, "test/manifold", fig)
        if codes is not None:
            log_figure(trainer, "test/latent_scatter", latent_scatter_figure(*codes))
    vae.train(was_training)


def _different_digit_pairs(labels: torch.Tensor, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` index pairs (i, i') of consecutive images whose digits differ."""
    pairs, i = [], 0
    while len(pairs) < n and i + 1 < len(labels):
        j = next((j for j in range(i + 1, len(labels)) if labels[j] != labels[i]), None)
        if j is None:
            break
        pairs.append((i, j))
        i = j + 1
    return pairs or [(0, 0)]

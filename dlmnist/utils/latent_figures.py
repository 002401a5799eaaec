"""Figures of generative and attention models: image grids, latent scatter, attention maps (matplotlib, no logger)."""

from __future__ import annotations

import torch

from dlmnist.utils.figures import subplots, tile


def image_grid_figure(images: torch.Tensor, rows: int, title: str = "", row_labels: list[str] | None = None):
    """``images`` (N, 1, H, W) in [0, 1] drawn as ``rows`` rows of N / rows images, without axes."""
    cols = -(-len(images) // rows)
    picture = tile(images, cols)  # (rows * (H + 1) - 1, cols * (W + 1) - 1)
    fig, ax = subplots(figsize=(cols * 0.9, rows * 0.9 + 0.4))
    ax.imshow(picture.numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    h = images.shape[-2]
    for r, label in enumerate(row_labels or []):
        ax.text(-2, r * (h + 1) + h / 2, label, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def latent_scatter_figure(codes: torch.Tensor, labels: torch.Tensor, title: str = "test codes (posterior means)"):
    """2-d codes (N, 2) as points coloured by digit."""
    fig, ax = subplots(figsize=(6, 5.5))
    pts = ax.scatter(codes[:, 0].numpy(), codes[:, 1].numpy(), c=labels.numpy(), cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
    fig.colorbar(pts, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="z[0]", ylabel="z[1]", title=title)
    return fig


def attention_figure(images: torch.Tensor, maps: list[torch.Tensor], grid: int):
    """One row per image: the image, then per layer the attention it pays to each patch, over the image.

    ``maps`` holds per layer the head-averaged weights (B, n, n). With a class token (n = grid**2 + 1) the
    class token's row is shown; without one, the mean over all queries (how much each patch is attended to).
    """
    b, layers = len(images), len(maps)
    size = images.shape[-1]
    fig, axes = subplots(b, layers + 1, figsize=(1.4 * (layers + 1), 1.4 * b + 0.4), squeeze=False)
    for i in range(b):
        axes[i, 0].imshow(images[i, 0].numpy(), cmap="gray")
        for j, w in enumerate(maps):
            att = w[i, 0, 1:] if w.shape[-1] == grid * grid + 1 else w[i].mean(dim=0)  # (grid * grid,)
            att = att.reshape(1, 1, grid, grid)
            att = torch.nn.functional.interpolate(att, size=(size, size), mode="nearest")[0, 0]
            axes[i, j + 1].imshow(images[i, 0].numpy(), cmap="gray")
            axes[i, j + 1].imshow(att.numpy(), cmap="inferno", alpha=0.6)
            if i == 0:
                axes[i, j + 1].set_title(f"layer {j + 1}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("attention to each patch (class token's row, heads averaged)", fontsize=9)
    return fig

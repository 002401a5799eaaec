"""The attention-map picture of the digit-sequence models: decoder step x encoder position, under the digits."""

from __future__ import annotations

import torch

from dlmnist.utils.figures import subplots


def sequence_attention_figure(images: torch.Tensor, weights: torch.Tensor, placed: torch.Tensor,
                              preds: torch.Tensor, title: str):
    """One column per sequence: the digits ``images`` (N, 1, 28, L * 28) in [0, 1] above the weights (N, T, L) of
    each decoder step (row, labelled with its prediction) over the encoder positions (column, labelled with the
    digit placed there, ``placed`` (N, L)); ``preds`` (N, T)."""
    n, steps, length = weights.shape
    fig, axes = subplots(2, n, figsize=(1.0 + (0.6 * length + 0.5) * n, 1.4 + 0.6 * (steps + 1)),
                             gridspec_kw={"height_ratios": [1, steps], "hspace": 0.05, "wspace": 0.35}, squeeze=False)
    for i in range(n):
        top, grid = axes[0, i], axes[1, i]
        top.imshow(images[i, 0].numpy(), cmap="gray", aspect="auto")
        top.axis("off")
        im = grid.imshow(weights[i].numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        grid.set_xticks(range(length), [str(int(d)) for d in placed[i]], fontsize=7)
        grid.set_yticks(range(steps), [f"{t}: {int(p)}" for t, p in enumerate(preds[i])], fontsize=7)
        grid.set_xlabel("encoder position (digit)", fontsize=7)
        if i == 0:
            grid.set_ylabel("decoder step: output", fontsize=7)
    fig.colorbar(im, ax=axes[1, :].tolist(), fraction=0.02, pad=0.02)
    fig.suptitle(title, fontsize=9)
    return fig

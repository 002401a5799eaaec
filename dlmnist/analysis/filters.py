"""``dlmnist filters CKPT [CKPT ...] --out FILE.png``: the learned filters of each model's first conv layer.

E.g. a plain CNN against the same CNN with skip connections (sheet 002, CNNs 4):
``dlmnist filters runs/cnn_study_same_padding/version_0/checkpoints/best.ckpt
runs/cnn_study_residual/version_0/checkpoints/best.ckpt --out filters.png``. One panel per checkpoint, one tile
per output channel (input channels side by side), each filter on its own colour scale: white is 0, red
positive, blue negative. For each checkpoint it also prints two numbers per filter, averaged: the
share of the filter's squared weight on its centre tap (1: a point filter, ``1/k^2`` for a flat one) and
``sum(w) / sum(|w|)`` (+-1: a blob that averages, 0: an edge or difference filter that ignores flat regions);
and, for the second checkpoint on, the mean cosine similarity of its filters to the first checkpoint's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn as nn

from dlmnist.utils.figures import colormap, figure_png
from dlmnist.utils.files import atomic_write_bytes


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """``(name, layer)`` of the first ``nn.Conv2d`` with a kernel larger than 1x1, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and max(module.kernel_size) > 1:
            return name, module
    raise ValueError(f"{type(model).__name__} has no Conv2d layer with a kernel larger than 1x1")


def filter_stats(weight: torch.Tensor) -> dict[str, float]:
    """Centre share and ``sum / sum |.|`` of ``(C_out, C_in, k, k)`` filters, averaged over the filters."""
    w = weight.detach().float().flatten(1)  # (C_out, C_in k k)
    k_h, k_w = weight.shape[-2:]
    centre = weight.detach().float()[:, :, k_h // 2, k_w // 2].pow(2).sum(1)  # (C_out,)
    return {
        "centre_share": float((centre / w.pow(2).sum(1).clamp_min(1e-12)).mean()),
        "dc": float((w.sum(1) / w.abs().sum(1).clamp_min(1e-12)).mean()),
    }


def filter_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of filter i of ``a`` and filter i of ``b`` (1: the same directions). Two runs
    with the same seed start from the same filters, so this says how far training took them apart."""
    return float(torch.nn.functional.cosine_similarity(a.detach().flatten(1), b.detach().flatten(1)).mean())


def filters_figure(panels: list[tuple[str, torch.Tensor]], ncols: int = 8):
    """One titled block of ``ncols``-wide rows per ``(title, (C_out, C_in, k, k) weight)``: every filter on its own
    scale (red positive, blue negative, white 0), input channels side by side."""
    from matplotlib.figure import Figure

    rows = [-(-len(w) // ncols) for _, w in panels]
    fig = Figure(figsize=(0.9 * ncols, 0.9 * sum(rows) + 0.35 * len(panels)), layout="constrained")
    cmap = colormap("RdBu_r")
    for sub, (title, weight), n in zip(fig.subfigures(len(panels), 1, height_ratios=rows, squeeze=False).flat,
                                       panels, rows):
        sub.suptitle(title, fontsize=9)
        w = weight.detach().float()
        w = torch.cat(list(w.unbind(1)), dim=-1)  # (C_out, k, C_in k): input channels side by side
        for i, ax in enumerate(sub.subplots(n, ncols, squeeze=False).flat):
            ax.set_axis_off()
            if i < len(w):
                m = float(w[i].abs().max().clamp_min(1e-12))
                ax.imshow(w[i].numpy(), cmap=cmap, vmin=-m, vmax=m, interpolation="nearest")
    return fig


def main(argv: list[str]) -> int:
    import lightning as L

    import dlmnist.models  # noqa: F401  (the classes a checkpoint may name must be imported)

    parser = argparse.ArgumentParser(prog="dlmnist filters", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoints of models with a conv layer")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--titles", default=None, help="comma-separated panel titles, one per checkpoint")
    parser.add_argument("--ncols", type=int, default=8, help="filters per row")
    args = parser.parse_args(argv)
    titles = args.titles.split(",") if args.titles else [c.parent.parent.parent.name for c in args.checkpoints]
    if len(titles) != len(args.checkpoints):
        parser.error(f"--titles has {len(titles)} names for {len(args.checkpoints)} checkpoints")
    for ckpt in args.checkpoints:
        if not ckpt.is_file():
            parser.error(f"{ckpt}: no such checkpoint file")
    panels = []
    for ckpt, title in zip(args.checkpoints, titles):
        model = L.LightningModule.load_from_checkpoint(ckpt, map_location="cpu")
        try:
            name, conv = first_conv(model)
        except ValueError as e:
            parser.error(f"{ckpt}: {e}")
        stats = filter_stats(conv.weight)
        line = f"{title}: {name} {tuple(conv.weight.shape)}, centre share {stats['centre_share']:.3f}, "
        line += f"sum/sum|w| {stats['dc']:+.3f}"
        if panels and panels[0][1].shape == conv.weight.shape:
            line += f", cosine to {titles[0]}'s filter by filter {filter_cosine(panels[0][1], conv.weight):.3f}"
        print(line)
        panels.append((f"{title}: {name} {tuple(conv.weight.shape)}", conv.weight))
    atomic_write_bytes(args.out, figure_png(filters_figure(panels, ncols=args.ncols)))
    print(f"written {args.out}")
    return 0

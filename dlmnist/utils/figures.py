"""Figures saved as PNG in the run folder and sent to whichever logger is active (W&B, TensorBoard).

Figures are ``matplotlib.figure.Figure`` objects made directly (matplotlib's object API): no pyplot, so nothing
here selects a backend or keeps figures open; ``fig.savefig`` writes PNG whatever backend the process uses.
"""

from __future__ import annotations

import io
from pathlib import Path

import lightning as L
import torch
from torchvision.utils import make_grid

from dlmnist.utils.files import atomic_write_bytes, run_dir


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, **kwargs):
    """``(figure, axes)`` as ``pyplot.subplots`` returns them, on a ``Figure`` that pyplot does not manage."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def colormap(name: str):
    """matplotlib's colormap ``name`` (e.g. ``tab10``: ``colormap("tab10")(i)`` is the i-th colour)."""
    import matplotlib

    return matplotlib.colormaps[name]


def log_figure(trainer: L.Trainer, key: str, fig) -> Path:
    """Save ``fig`` as ``<run>/figures/<key with / as __>.png`` and log it to W&B / TensorBoard if present."""
    path = run_dir(trainer) / "figures" / f"{key.replace('/', '__')}.png"
    atomic_write_bytes(path, figure_png(fig))
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif kind == "TensorBoardLogger":
            logger.experiment.add_figure(key, fig, global_step=trainer.global_step, close=False)
    return path


def figure_png(fig) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def confusion_figure(cm: torch.Tensor, classes: list[str] | None = None):
    """Confusion matrix (rows: true class, columns: predicted) with the counts written in."""
    n = cm.shape[0]
    classes = classes or [str(i) for i in range(n)]
    fig, ax = subplots(figsize=(6, 5.5))
    ax.imshow(cm.numpy(), cmap="Blues")
    for i in range(n):
        for j in range(n):
            v = int(cm[i, j])
            color = "white" if v > cm.max() / 2 else "black"
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color=color)
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes)
    ax.set(xlabel="predicted", ylabel="true")
    acc = cm.diag().sum().item() / max(cm.sum().item(), 1)
    ax.set_title(f"confusion matrix (accuracy {acc:.4f})")
    return fig


def tile(images: torch.Tensor, ncols: int) -> torch.Tensor:
    """``(N, 1, H, W)`` images in [0, 1] -> one ``(rows*H, ncols*W)`` picture, a 1-pixel gray line between tiles
    (fewer columns when N < ncols)."""
    grid = make_grid(images.float().clamp(0, 1).cpu(), nrow=ncols, padding=1, pad_value=0.5)  # (3, ...), gray frame
    return grid[0, 1:-1, 1:-1]  # one channel, without the outer frame


def panels_figure(panels: list[tuple[str, torch.Tensor]], ncols: int = 8, side_by_side: bool = True):
    """One tiled panel of images per ``(title, (N, 1, H, W) images)``: e.g. inputs beside their reconstructions."""
    pictures = [(title, tile(images, ncols)) for title, images in panels]
    h, w = pictures[0][1].shape
    k = len(pictures)
    grid = (1, k) if side_by_side else (k, 1)
    scale = 1 / 40  # inches per pixel
    size = (w * scale * k + 0.3 * k, h * scale + 0.5) if side_by_side else (w * scale, (h * scale + 0.4) * k)
    fig, axes = subplots(*grid, figsize=size, squeeze=False)
    for ax, (title, picture) in zip(axes.flat, pictures):
        ax.imshow(picture.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig


def labelled_rows_figure(rows: list[tuple[str, torch.Tensor]], title: str = ""):
    """One row of tiles per ``(label, (N, 1, H, W) images in [0, 1])``, the label left of its row: e.g. the same
    codes' samples after each epoch, one epoch per row."""
    pictures = [(label, tile(images, len(images))) for label, images in rows]
    h, w = pictures[0][1].shape
    scale = 1 / 40  # inches per pixel, as panels_figure
    fig, axes = subplots(len(pictures), 1, figsize=(w * scale + 1.0, (h * scale + 0.1) * len(pictures) + 0.4),
                         squeeze=False)
    for ax, (label, picture) in zip(axes[:, 0], pictures):
        ax.imshow(picture.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig

"""Figures saved as PNG in the run folder and sent to whichever logger is active (W&B, TensorBoard)."""

from __future__ import annotations

import io
from pathlib import Path

import lightning as L
import torch

from dlmnist.callbacks.files import atomic_write_bytes, run_dir


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_figure(trainer: L.Trainer, key: str, fig) -> Path:
    """Save ``fig`` as ``<run>/figures/<key with / as __>.png`` and log it to W&B / TensorBoard if present."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    path = atomic_write_bytes(run_dir(trainer) / "figures" / f"{key.replace('/', '__')}.png", buf.getvalue())
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif kind == "TensorBoardLogger":
            logger.experiment.add_figure(key, fig, global_step=trainer.global_step)
    plt.close(fig)
    return path


def confusion_figure(cm: torch.Tensor, classes: list[str] | None = None):
    """Confusion matrix (rows: true class, columns: predicted) with the counts written in."""
    plt = _pyplot()
    n = cm.shape[0]
    classes = classes or [str(i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(6, 5.5))
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

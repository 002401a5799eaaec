"""Optimizer and learning-rate schedule built from a model's typed arguments."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, Optional

import lightning as L
import torch

OptimizerName = Literal["adam", "adamw", "sgd"]
ScheduleName = Literal["onecycle", "cosine", "constant"]


def build_optimizer(
    module: L.LightningModule,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
    optimizer: OptimizerName = "adamw",
    schedule: ScheduleName = "onecycle",
    warmup: float = 0.2,
    total_steps: Optional[int] = None,
):
    """Return what ``configure_optimizers`` returns; one-cycle and cosine step once per batch.

    The schedule spans ``total_steps`` optimizer steps, by default the whole run (e.g. one phase of a run otherwise).
    """
    params = [p for p in params if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if schedule == "constant":
        return opt
    total = module.trainer.estimated_stepping_batches if total_steps is None else total_steps
    if not math.isfinite(total) or total < 1:
        raise ValueError(f"schedule={schedule!r} needs a finite run: set trainer.max_epochs or trainer.max_steps")
    total = int(total)
    if schedule == "onecycle":
        if not 0.0 < warmup < 1.0:
            raise ValueError(f"warmup must lie strictly between 0 and 1, got {warmup}")
        if math.isclose(warmup * total, 1.0):  # OneCycleLR divides by (warmup steps - 1)
            warmup = min(2.0 / total, 0.5)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total, pct_start=warmup, anneal_strategy="cos", cycle_momentum=False
        )
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def check_positive(**values: float) -> None:
    for name, v in values.items():
        if not v > 0:
            raise ValueError(f"{name} must be positive, got {v}")

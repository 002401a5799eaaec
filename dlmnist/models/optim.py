"""How every model trains: one :class:`Optim` description (optimizer, peak learning rate, schedule), one builder.

A model takes ``optim: Optim`` (in a config ``model.init_args.optim: {lr: 0.004, weight_decay: 5e-4}``, on the
command line ``--model.optim.lr=0.004``); fields left out keep the model's default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Optional, Union

import lightning as L
import torch

from dlmnist.utils.checks import NonNegativeFloat, OpenUnitInterval, PositiveFloat, check

OptimizerName = Literal["adam", "adamw", "sgd"]
ScheduleName = Literal["onecycle", "cosine", "constant"]


@dataclass(frozen=True)
class Optim:
    """Optimizer and learning-rate schedule.

    Args:
        lr: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 (Adam, SGD).
        name: ``adamw``, ``adam`` or ``sgd`` (Nesterov momentum 0.9).
        schedule: ``onecycle`` (warm-up, then cosine down), ``cosine`` or ``constant``, stepped every batch.
        warmup: share of the run spent warming up (one-cycle), strictly between 0 and 1.
    """

    lr: PositiveFloat = 3e-3
    weight_decay: NonNegativeFloat = 0.0
    name: OptimizerName = "adamw"
    schedule: ScheduleName = "onecycle"
    warmup: OpenUnitInterval = 0.2

    def __post_init__(self) -> None:
        check(PositiveFloat, **{"optim.lr": self.lr})
        check(NonNegativeFloat, **{"optim.weight_decay": self.weight_decay})
        check(OpenUnitInterval, **{"optim.warmup": self.warmup})
        check(OptimizerName, **{"optim.name": self.name})
        check(ScheduleName, **{"optim.schedule": self.schedule})
        # plain floats: the CLI hands jsonargparse's restricted types (PositiveFloat, ...), and the optimizer and
        # its schedule keep these numbers in their state, which a checkpoint loaded with weights_only must not hold
        for name in ("lr", "weight_decay", "warmup"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def of(cls, value: Union[Optim, Mapping, None]) -> Optim:
        """``value`` as an Optim: a checkpoint's hyper-parameters hold it as a dict."""
        if value is None:
            return cls()
        return value if isinstance(value, Optim) else cls(**dict(value))


def build_optimizer(
    module: L.LightningModule,
    params: Iterable[torch.nn.Parameter],
    optim: Optim,
    lr: Optional[float] = None,
    total_steps: Optional[int] = None,
):
    """Return what ``configure_optimizers`` returns; one-cycle and cosine step once per batch.

    ``lr`` replaces ``optim.lr`` (e.g. one phase of a stacked autoencoder); the schedule spans ``total_steps``
    optimizer steps, by default the whole run.
    """
    params = [p for p in params if p.requires_grad]
    lr = optim.lr if lr is None else lr
    if optim.name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=optim.weight_decay)
    elif optim.name == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=optim.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=optim.weight_decay)
    if optim.schedule == "constant":
        return opt
    total = module.trainer.estimated_stepping_batches if total_steps is None else total_steps
    if not math.isfinite(total) or total < 1:
        raise ValueError(f"schedule={optim.schedule!r} needs a finite run: set trainer.max_epochs or trainer.max_steps")
    total = int(total)
    if optim.schedule == "onecycle":
        warmup = optim.warmup
        if math.isclose(warmup * total, 1.0):  # OneCycleLR divides by (warmup steps - 1)
            warmup = min(2.0 / total, 0.5)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total, pct_start=warmup, anneal_strategy="cos", cycle_momentum=False
        )
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


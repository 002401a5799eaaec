"""A classifier's test loss and accuracy after every epoch: the test curves of sheet 001, task 2.

``--trainer.callbacks+=dlmnist.callbacks.TestCurve`` (``configs/cnn_ae_encoder.yaml`` carries it). After each
validation epoch the data module's test set goes through the model in evaluation mode, and ``test/loss_epoch`` and
``test/acc_epoch`` are logged beside ``val/loss`` and ``val/acc``; ``figures/curves.png`` draws them as the test
line of the loss and accuracy panels. They are for looking at, not for choosing: picking an epoch, a learning
rate or a model by them would tune on the test set, which is what the validation set is for.
"""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch

from dlmnist.models.classifier import Classifier, classification_loss
from dlmnist.utils.checks import PositiveInt, check


class TestCurve(L.Callback):
    """Log ``test/loss_epoch`` and ``test/acc_epoch`` of a :class:`~dlmnist.models.Classifier` after every
    validation epoch. ``max_batches``: test batches per evaluation (None: the whole test set, or as many as the
    trainer's ``limit_test_batches`` when that is a count)."""

    def __init__(self, max_batches: Optional[PositiveInt] = None) -> None:
        check(PositiveInt, max_batches=max_batches)
        self.max_batches = max_batches

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, Classifier):
            raise ValueError(f"TestCurve draws a classifier's test curve; {type(pl_module).__name__} is none")

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.datamodule is None:
            return
        limits = [self.max_batches]
        if isinstance(trainer.limit_test_batches, int):  # the trainer's own limit (fast_dev_run sets it too)
            limits.append(trainer.limit_test_batches)
        limit = min((m for m in limits if m is not None), default=None)
        was_training = pl_module.training
        pl_module.eval()
        loss = correct = n = 0.0
        for i, (x, y) in enumerate(trainer.datamodule.test_dataloader()):
            if limit is not None and i >= limit:
                break
            x, y = x.to(pl_module.device), y.to(pl_module.device)
            logits = pl_module(x)
            loss += classification_loss(logits, y, pl_module.loss_name).item() * len(y)
            correct += (logits.argmax(dim=-1) == y).sum().item()
            n += len(y)
        pl_module.train(was_training)
        if n:
            pl_module.log("test/loss_epoch", loss / n, sync_dist=True)
            pl_module.log("test/acc_epoch", correct / n, sync_dist=True)

"""Classifier: an encoder (any ``nn.Module`` with ``latent_dim``) followed by an MLP head."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from dlmnist.models.hparams import save_hparams
from dlmnist.models.optim import OptimizerName, ScheduleName, build_optimizer, check_positive
from dlmnist.models.pretrained import PretrainedEncoder
from dlmnist.nn.layers import MLP, Activation, check_dropout


class Classifier(PretrainedEncoder, L.LightningModule):
    """Cross-entropy classifier: ``encoder`` -> features ``(B, latent_dim)`` -> MLP head -> logits.

    Args:
        encoder: the feature extractor, e.g. ``dlmnist.nn.ConvEncoder``.
        head_hidden: hidden widths of the MLP head (``[]`` for a single linear layer).
        head_activation: activation between the head's layers.
        head_dropout: dropout between the head's layers.
        num_classes: number of classes.
        lr: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 (Adam, SGD).
        optimizer: ``adamw``, ``adam`` or ``sgd`` (Nesterov momentum 0.9).
        schedule: ``onecycle``, ``cosine`` or ``constant``, stepped every batch.
        warmup: share of the run spent warming up (one-cycle).
        encoder_checkpoint: start the encoder from this checkpoint's ``encoder.*`` weights, e.g. a conv
            autoencoder's (see ``dlmnist.models.pretrained``); fine-tuned unless ``freeze_encoder``.
        freeze_encoder: keep the encoder fixed (no gradients, eval mode): only the head learns.
    """

    monitor = ("val/acc", "max")  # what best.ckpt is chosen by

    def __init__(
        self,
        encoder: nn.Module,
        head_hidden: list[int] = [],  # noqa: B006
        head_activation: Activation = "relu",
        head_dropout: float = 0.0,
        num_classes: int = 10,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        optimizer: OptimizerName = "adamw",
        schedule: ScheduleName = "onecycle",
        warmup: float = 0.2,
        encoder_checkpoint: Optional[str] = None,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        check_positive(lr=lr, num_classes=num_classes)
        check_dropout(head_dropout, "head_dropout")
        if not hasattr(encoder, "latent_dim"):
            raise ValueError(f"encoder {type(encoder).__name__} has no latent_dim attribute")
        save_hparams(self, ("encoder",))
        self.encoder = encoder
        self.head = MLP(encoder.latent_dim, head_hidden, num_classes, head_activation, head_dropout)
        self.metrics = nn.ModuleDict(
            {stage: MulticlassAccuracy(num_classes, average="micro") for stage in ("train_", "val_", "test_")}
        )
        self.confusion = MulticlassConfusionMatrix(num_classes)
        self.init_encoder(encoder_checkpoint, freeze_encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, 1, 28, 28) -> (B, num_classes) logits

    def _shared_step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.metrics[f"{stage}_"].update(logits, y)  # logged once per epoch, by _log_accuracy
        # sync_dist: under DDP the epoch mean (and the step value) covers every process's batches; in one
        # process it costs nothing, and under DDP one scalar all-reduce a training step
        self.log(
            f"{stage}/loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=len(y),
            sync_dist=True,
        )
        if stage == "test":
            self.confusion.update(logits, y)
        return loss

    def _log_accuracy(self, stage: str) -> None:
        # Once per epoch: logging the metric object from every step costs Lightning about 1 ms per step on
        # a CPU, a twentieth of a configs/cnn.yaml training step. compute() gathers the counts of all processes,
        # so every process logs the same value (sync_dist averages equal numbers, and keeps Lightning quiet).
        metric = self.metrics[f"{stage}_"]
        if metric.update_count:
            self.log(f"{stage}/acc", metric.compute(), prog_bar=stage != "train", sync_dist=True)
        metric.reset()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def on_train_epoch_end(self) -> None:
        self._log_accuracy("train")

    def on_validation_epoch_end(self) -> None:
        self._log_accuracy("val")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        from dlmnist.utils.figures import confusion_figure, log_figure

        self._log_accuracy("test")
        cm = self.confusion.compute().cpu()
        self.confusion.reset()
        if self.trainer.is_global_zero:
            log_figure(self.trainer, "test/confusion_matrix", confusion_figure(cm))

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y = batch
        prob = self(x).softmax(dim=-1)
        conf, pred = prob.max(dim=-1)
        return {"label": y, "pred": pred, "prob": conf}

    def configure_optimizers(self):
        h = self.hparams
        return build_optimizer(self, self.parameters(), h.lr, h.weight_decay, h.optimizer, h.schedule, h.warmup)

    @staticmethod
    def write_predictions(outputs: list[dict[str, torch.Tensor]], folder: Path) -> Path:
        """CSV of test index, true label, predicted class and its probability."""
        from dlmnist.utils.files import atomic_write_text

        label = torch.cat([o["label"] for o in outputs]).tolist()
        pred = torch.cat([o["pred"] for o in outputs]).tolist()
        prob = torch.cat([o["prob"] for o in outputs]).tolist()
        rows = ["index,label,pred,prob"]
        rows += [f"{i},{t},{p},{q:.6f}" for i, (t, p, q) in enumerate(zip(label, pred, prob))]
        return atomic_write_text(folder / "predictions.csv", "\n".join(rows) + "\n")

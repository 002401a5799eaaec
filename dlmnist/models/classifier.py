"""Classifier: an encoder (any ``nn.Module`` with ``latent_dim``) followed by an MLP head."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from dlmnist.data.sources import MNIST_MEAN, MNIST_STD
from dlmnist.models.base import Model, Stage
from dlmnist.models.optim import Optim
from dlmnist.models.pretrained import PretrainedEncoder
from dlmnist.nn.layers import MLP, Activation
from dlmnist.utils.checks import Fraction, PositiveInt, check
from dlmnist.utils.figures import confusion_figure, log_figure
from dlmnist.utils.files import atomic_write_text

ClassifierLoss = Literal["cross_entropy", "mse"]


def classification_loss(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """``cross_entropy`` of the logits, or ``mse``: the squared distance between the softmax probabilities and
    the one-hot target, summed over the classes and averaged over the batch (the Brier score; 0 to 2)."""
    if loss == "cross_entropy":
        return F.cross_entropy(logits, y)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        target = F.one_hot(y, logits.shape[-1]).float()
        return (logits.float().softmax(dim=-1) - target).square().sum(dim=-1).mean()


class Classifier(PretrainedEncoder, Model):
    """Classifier: ``encoder`` -> features ``(B, latent_dim)`` -> MLP head -> logits.

    Args:
        encoder: the feature extractor, e.g. ``dlmnist.nn.ConvEncoder``.
        head_hidden: hidden widths of the MLP head (``[]`` for a single linear layer).
        head_activation: activation between the head's layers.
        head_dropout: dropout between the head's layers.
        num_classes: number of classes.
        optim: optimizer and schedule (:class:`~dlmnist.models.optim.Optim`).
        encoder_checkpoint: start the encoder from this checkpoint's ``encoder.*`` weights, e.g. a conv
            autoencoder's (see ``dlmnist.models.pretrained``); fine-tuned unless ``freeze_encoder``.
        freeze_encoder: keep the encoder fixed (no gradients, eval mode): only the head learns.
        loss: ``cross_entropy`` (of the logits), or ``mse``: the one-hot squared error of the softmax probabilities
            (:func:`classification_loss`), the "L2 loss for classification" that the course sheets compare.
    """

    monitor = ("val/acc", "max")
    input_normalization = (MNIST_MEAN, MNIST_STD)  # MNISTDataModule's default (normalize: true) until a fit says

    def __init__(
        self,
        encoder: nn.Module,
        head_hidden: list[int] = [],  # noqa: B006
        head_activation: Activation = "relu",
        head_dropout: Fraction = 0.0,
        num_classes: PositiveInt = 10,
        optim: Optim = Optim(),
        encoder_checkpoint: Optional[str] = None,
        freeze_encoder: bool = False,
        loss: ClassifierLoss = "cross_entropy",
    ) -> None:
        super().__init__(optim=optim)
        check(PositiveInt, num_classes=num_classes)
        check(ClassifierLoss, loss=loss)
        self.loss_name = loss
        check(Fraction, head_dropout=head_dropout)
        if not hasattr(encoder, "latent_dim"):
            raise ValueError(f"encoder {type(encoder).__name__} has no latent_dim attribute")
        self.save_hparams(("encoder",))
        self.encoder = encoder
        self.head = MLP(encoder.latent_dim, head_hidden, num_classes, head_activation, head_dropout)
        # validate_args=False: the logits and labels come from this model and the data module, and torchmetrics'
        # input checks cost more per step than the update itself. Training counts its hits itself (classify).
        self.metrics = nn.ModuleDict(
            {s: MulticlassAccuracy(num_classes, average="micro", validate_args=False) for s in ("val_", "test_")}
        )
        self.confusion = MulticlassConfusionMatrix(num_classes)
        self.init_encoder(encoder_checkpoint, freeze_encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, 1, 28, 28) -> (B, num_classes) logits

    def predicts(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted classes (N,) of normalised images ``x``: what :meth:`predict_images` returns."""
        return self(x).argmax(dim=-1)

    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.classify(self(x), y, stage)

    def classify(self, logits: torch.Tensor, y: torch.Tensor, stage: Stage) -> torch.Tensor:
        """The loss of ``logits`` (B, num_classes) against ``y`` (B,): logged, counted for the accuracy."""
        loss = classification_loss(logits, y, self.loss_name)
        self.log_stage(stage, "loss", loss, prog_bar=True, batch_size=len(y))
        if stage == "train":  # three tensor operations; a torchmetrics update costs a few times more per step
            self.add_to_epoch("train/acc", (logits.detach().argmax(-1) == y).sum(), len(y))
        else:
            self.metrics[f"{stage}_"].update(logits, y)  # logged once per epoch, by _log_accuracy
        if stage == "test":
            self.confusion.update(logits, y)
        return loss

    def _log_accuracy(self, stage: Stage) -> None:
        # Once per epoch: logging the metric object from every step costs Lightning about 1 ms per step on
        # a CPU, a twentieth of a configs/cnn.yaml training step. compute() gathers the counts of all processes,
        # so every process logs the same value (sync_dist averages equal numbers, and keeps Lightning quiet).
        metric = self.metrics[f"{stage}_"]
        if metric.update_count:
            self.log(f"{stage}/acc", metric.compute(), prog_bar=True, sync_dist=True)
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_accuracy("val")

    def on_test_epoch_end(self) -> None:
        self._log_accuracy("test")
        cm = self.confusion.compute().cpu()
        self.confusion.reset()
        if self.trainer.is_global_zero:
            log_figure(self.trainer, "test/confusion_matrix", confusion_figure(cm))

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y = batch
        conf, pred = self(x).softmax(dim=-1).max(dim=-1)
        return {"label": y, "pred": pred, "prob": conf}

    def write_predictions(self, outputs: list[dict[str, torch.Tensor]], folder: Path) -> Path:
        """CSV of test index, true label, predicted class and its probability."""
        label = torch.cat([o["label"] for o in outputs]).tolist()
        pred = torch.cat([o["pred"] for o in outputs]).tolist()
        prob = torch.cat([o["prob"] for o in outputs]).tolist()
        rows = ["index,label,pred,prob"]
        rows += [f"{i},{t},{p},{q:.6f}" for i, (t, p, q) in enumerate(zip(label, pred, prob))]
        return atomic_write_text(folder / "predictions.csv", "\n".join(rows) + "\n")

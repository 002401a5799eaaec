"""StackedAutoEncoder: greedy layer-wise (denoising) autoencoder pretraining, a classifier head, then fine-tuning.

One ``dlmnist fit`` runs the whole schedule, phase by phase (by epoch): ``pretrain layer 1/L`` .. ``pretrain
layer L/L`` (layer k is the encoder half of a one-hidden-layer autoencoder on the codes of the frozen layers
below it, with a temporary decoder), ``head`` (only the classifier head trains on the frozen stack: the
accuracy "before fine-tuning") and ``finetune`` (everything trained end to end with labels: "after").
Each phase gets a fresh optimizer and learning-rate schedule; the checkpoint records the phase, and the
weights at the end of the head phase, so that ``dlmnist test`` reports both accuracies from one checkpoint.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info
from torch.func import functional_call
from torchmetrics.classification import MulticlassAccuracy

from dlmnist.compat import train_progress_bar
from dlmnist.models.base import Stage
from dlmnist.models.classifier import Classifier
from dlmnist.models.optim import Optim, build_optimizer
from dlmnist.models.phases import Phase, build_schedule, describe, phase_index
from dlmnist.nn.layers import Activation, per_layer
from dlmnist.utils.checks import Fraction, NonNegativeInt, PositiveFloat, PositiveInt, check


class StackedAutoEncoder(Classifier):
    """Stacked (denoising) autoencoder pretraining, then classification; see the module docstring.

    Args:
        encoder: a layer-wise stack, e.g. ``dlmnist.nn.DenseStack`` (``layers``, ``widths``, ``latent_dim``).
        pretrain: greedy layer-wise pretraining; ``false`` trains the same network from random initialisation,
            end to end, for the same total number of epochs (the comparison run).
        pretrain_epochs: epochs of pretraining, one value for every layer or one per layer.
        corruption: masking noise while pretraining a layer: the share of its inputs set to zero
            (denoising autoencoder; 0 for a plain autoencoder), one value or one per layer.
        head_epochs: epochs training only the head on the frozen stack (0 skips it).
        finetune_epochs: epochs training the whole network with labels; 0 (with ``head_epochs: 0``) pretrains only,
            for a run that starts its encoder from this one's (``encoder_checkpoint``) and sees only its own labels.
        head_hidden, head_activation, head_dropout, num_classes: the classifier head, as in
            :class:`~dlmnist.models.Classifier`.
        optim: optimizer and schedule of every phase (a fresh optimizer for each, its schedule spanning the
            phase); ``optim.lr`` is the peak learning rate of fine-tuning.
        pretrain_lr: peak learning rate of each layer's pretraining.
        head_lr: peak learning rate of the head phase.
    """

    # No metric picks the checkpoint: the result is the model at the end of the schedule, and val/acc of different
    # phases is not comparable. It also keeps last.ckpt current: Lightning rewrites last.ckpt only when a
    # monitored metric improves, which would make `--ckpt_path last` resume from a stale epoch.
    monitor = (None, "max")  # best.ckpt = last.ckpt = the newest epoch

    def __init__(
        self,
        encoder: nn.Module,
        pretrain: bool = True,
        pretrain_epochs: Union[PositiveInt, list[PositiveInt]] = 2,
        corruption: Union[Fraction, list[Fraction]] = 0.2,
        head_epochs: NonNegativeInt = 2,
        finetune_epochs: NonNegativeInt = 10,
        head_hidden: list[PositiveInt] = [],  # noqa: B006
        head_activation: Activation = "relu",
        head_dropout: Fraction = 0.0,
        num_classes: PositiveInt = 10,
        optim: Optim = Optim(lr=1e-3),
        pretrain_lr: PositiveFloat = 1e-3,
        head_lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__(
            encoder=encoder,
            head_hidden=head_hidden,
            head_activation=head_activation,
            head_dropout=head_dropout,
            num_classes=num_classes,
            optim=optim,
        )
        if not all(hasattr(encoder, a) for a in ("layers", "widths", "latent_dim")):
            raise ValueError(f"encoder {type(encoder).__name__} is not a layer-wise stack (dlmnist.nn.DenseStack)")
        n = len(encoder.layers)
        epochs, noise = per_layer(pretrain_epochs, n, "pretrain_epochs"), per_layer(corruption, n, "corruption")
        check(PositiveInt, pretrain_epochs=pretrain_epochs)
        check(Fraction, corruption=corruption)
        check(NonNegativeInt, head_epochs=head_epochs, finetune_epochs=finetune_epochs)
        if not pretrain and finetune_epochs < 1:
            raise ValueError(f"finetune_epochs must be a positive integer without pretraining, got {finetune_epochs}")
        check(PositiveFloat, pretrain_lr=pretrain_lr, head_lr=head_lr)
        self.save_hparams(("encoder",))
        widths = encoder.widths
        # the temporary decoder of layer k maps its code back to its input: (B, widths[k]) -> (B, widths[k-1])
        self.decoders = nn.ModuleList(nn.Linear(b, a) for a, b in zip(widths[:-1], widths[1:])) if pretrain else None
        self.corruption = noise
        self.phases = build_schedule(n, pretrain, epochs, head_epochs, finetune_epochs)
        for k in ("after", "before"):  # the test accuracy after and before fine-tuning
            self.metrics[k] = MulticlassAccuracy(num_classes, average="micro", validate_args=False)  # as Classifier's
        self.before_finetune: Optional[dict[str, torch.Tensor]] = None  # encoder + head at the end of the head phase
        self._phase, self._optim_phase, self._announced = 0, None, None
        self._enter(0)

    @property
    def phase(self) -> Phase:
        return self.phases[self._phase]

    def _enter(self, i: int) -> None:
        """Make phase ``i`` current: only its parameters are trainable."""
        self._phase, phase = i, self.phases[i]
        self.requires_grad_(False)
        if phase.kind == "pretrain":
            trainable = [self.encoder.layers[phase.layer - 1], self.decoders[phase.layer - 1]]
        else:
            trainable = [self.head] if phase.kind == "head" else [self.encoder, self.head]
        for module in trainable:
            module.requires_grad_(True)

    def _reconstruction_loss(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Denoising autoencoder loss of layer ``k`` on the codes of the frozen layers below it."""
        with torch.no_grad():
            h = self.encoder(x, depth=k - 1, dropout=False)  # (B, widths[k-1]): the input of layer k
        p = self.corruption[k - 1]
        h_in = h * (torch.rand_like(h) >= p) if p else h  # masking noise: a share p of the inputs set to 0
        recon = self.decoders[k - 1](self.encoder.layers[k - 1](h_in))  # (B, widths[k-1])
        loss = F.mse_loss(recon, h)
        self.log_stage("train", f"recon_layer{k}", loss, prog_bar=True, batch_size=len(h))
        return loss

    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        x, y = batch
        phase = self.phase
        if stage == "train":
            self.log("phase", float(self._phase), on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
            if phase.kind == "pretrain":
                return self._reconstruction_loss(x, phase.layer)
        if stage == "train" and phase.kind == "head":
            with torch.no_grad():
                z = self.encoder(x, dropout=False)  # (B, latent_dim) from the frozen stack
            logits = self.head(z)
        else:
            logits = self(x)
        loss = self.classify(logits, y, stage)
        if stage == "test":
            self._test_before_after(x, y, logits)
        return loss

    def _test_before_after(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor) -> None:
        if self.phase.kind == "finetune" and self.hparams.pretrain:
            self.metrics["after"].update(logits, y)
            self.log("test/acc_after_finetune", self.metrics["after"], on_epoch=True, batch_size=len(y))
        if self.before_finetune is not None:
            before = functional_call(self, self.before_finetune, (x,))  # (B, num_classes) with the head-phase weights
            self.metrics["before"].update(before, y)
            self.log("test/acc_before_finetune", self.metrics["before"], on_epoch=True, batch_size=len(y))

    def configure_optimizers(self):
        """A fresh optimizer and schedule for the current phase's parameters, spanning that phase."""
        h, phase, trainer = self.hparams, self.phase, self.trainer
        lr = {"pretrain": h.pretrain_lr, "head": h.head_lr, "finetune": self.optim.lr}[phase.kind]
        if not math.isfinite(trainer.num_training_batches):
            trainer.estimated_stepping_batches  # noqa: B018 (sets up the training data, hence num_training_batches)
        per_epoch = max(1, math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches))
        self._optim_phase = self._phase
        steps = per_epoch * phase.epochs
        return build_optimizer(self, self.parameters(), self.optim, lr=lr, total_steps=steps)

    # ---- the phase schedule --------------------------------------------------------------------
    def check_trainer(self, trainer: L.Trainer) -> None:
        """Refuse a trainer whose max_epochs differs from the phase schedule (the CLI calls this before the run
        folder is made, so the error is a usage error; ``setup`` calls it again for a Trainer built in Python)."""
        super().check_trainer(trainer)
        total = self.phases[-1].last_epoch + 1
        if not trainer.fast_dev_run and trainer.max_epochs != total:
            raise ValueError(
                f"trainer.max_epochs={trainer.max_epochs} does not match the phase schedule of "
                f"{type(self).__name__} ({describe(self.phases)}): set trainer.max_epochs={total}"
            )

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.check_trainer(self.trainer)
        super().setup(stage)

    def on_train_epoch_start(self) -> None:
        i = phase_index(self.phases, self.current_epoch)
        phase = self.phases[i]
        if phase.kind == "finetune" and self.before_finetune is None and any(p.kind == "head" for p in self.phases):
            keep = ("encoder.", "head.")  # the model "before fine-tuning", evaluated again by `test`
            self.before_finetune = {k: v.detach().clone() for k, v in self.state_dict().items() if k.startswith(keep)}
        if i != self._phase:
            self._enter(i)
        if self._optim_phase != i:
            self.trainer.strategy.setup_optimizers(self.trainer)
        if self._announced != i:
            self._announced = i
            rank_zero_info(f"{type(self).__name__}: {phase.label} (epochs {phase.first_epoch}-{phase.last_epoch})")
        bar_callback = self.trainer.progress_bar_callback
        bar = train_progress_bar(bar_callback) if isinstance(bar_callback, TQDMProgressBar) else None
        if bar is not None:
            bar.set_description(f"Epoch {self.current_epoch} [{phase.label}]")

    def on_test_start(self) -> None:
        if self.before_finetune is not None:
            self.before_finetune = {k: v.to(self.device) for k, v in self.before_finetune.items()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        before = None if self.before_finetune is None else {k: v.cpu() for k, v in self.before_finetune.items()}
        checkpoint["stacked_ae"] = {"phase": self._phase, "label": self.phase.label, "before_finetune": before}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("stacked_ae")
        if state is None:
            raise ValueError("this checkpoint was not written by a StackedAutoEncoder (no phase recorded)")
        epoch, i = checkpoint.get("epoch", 0), state["phase"]
        expected = self.phases[phase_index(self.phases, epoch)]
        finished = self.phases[phase_index(self.phases, max(epoch - 1, 0))]  # saved once the epoch was counted
        if i >= len(self.phases) or self.phases[i] not in (expected, finished):
            raise ValueError(
                f"the checkpoint was saved in phase {state['label']!r} at epoch {epoch}, but this schedule "
                f"({describe(self.phases)}) puts that epoch in {expected.label!r}: use the run's own schedule"
            )
        self._enter(i)
        self.before_finetune = state["before_finetune"]

"""The base of every dlmnist model: step routing, one logging rule, the optimizer, ``monitor`` and the optional hooks.

A model is a file in ``dlmnist/models/`` with a class built on :class:`Model`. It implements
``step(batch, stage, batch_idx) -> loss`` for ``stage`` in ``train``, ``val``, ``test`` and logs through
:meth:`Model.log_stage`; the base routes Lightning's ``training_step``/``validation_step``/``test_step`` to it
and builds the optimizer and schedule from ``optim`` (:class:`~dlmnist.models.optim.Optim`). The command line
(``dlmnist.cli``) and the callbacks call only what is declared here.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import ClassVar, Literal, Optional

import lightning as L
import torch

from dlmnist.compat import attached_trainer, given_hyperparameters, hparams_dicts, logs_this_step
from dlmnist.models.optim import Optim, build_optimizer

Stage = Literal["train", "val", "test"]


class Model(L.LightningModule):
    """Base LightningModule of dlmnist's models.

    Args:
        optim: optimizer, peak learning rate and schedule (:class:`~dlmnist.models.optim.Optim`).
    """

    #: what :meth:`codes` returns, in words (``dlmnist latent`` prints it)
    code_description: ClassVar[str] = "encoder output"
    #: ``(metric, "min" | "max")`` that ``checkpoints/best.ckpt`` is chosen by (and ``dlmnist tune`` optimises);
    #: ``(None, ...)`` when no metric should pick it (best.ckpt is then the newest epoch).
    monitor: ClassVar[tuple[Optional[str], str]] = ("val/loss", "min")

    def __init__(self, optim: Optim = Optim()) -> None:
        super().__init__()
        self.optim = Optim.of(optim)
        self._train_sums: dict = {}  # {logged key: (sum, images, prog_bar)}: add_to_epoch, this training epoch
        self._train_last: dict = {}  # {name: value}: the newest training value of each name given to log_stage

    def save_hparams(self, submodules: tuple[str, ...] = ()) -> None:
        """``save_hyperparameters`` of the calling ``__init__`` that keeps sub-modules reloadable.

        Built by the CLI, the sub-modules' ``class_path``/``init_args`` are saved, so that
        ``load_from_checkpoint(path)`` rebuilds them. Built in Python, they are left out of the
        hyper-parameters (their weights are in the state dict): pass them again to
        ``load_from_checkpoint(path, encoder=...)``.
        """
        ignore = [] if given_hyperparameters() is not None else list(submodules)
        self.save_hyperparameters(ignore=ignore, frame=inspect.currentframe().f_back)
        # an Optim given in Python is kept as a dict, as the CLI gives it: the loggers cannot write a frozen
        # dataclass (Lightning's hparams.yaml), and Optim.of reads the dict back on load_from_checkpoint
        for hparams in hparams_dicts(self):
            for key, value in hparams.items():
                if dataclasses.is_dataclass(value) and not isinstance(value, type):
                    hparams[key] = dataclasses.asdict(value)

    # ---- steps -------------------------------------------------------------------------------
    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        """The loss of ``batch`` in ``stage``; logs what the stage reports. Every model implements it."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.step(batch, "train", batch_idx)

    def validation_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "test", batch_idx)

    def log_stage(self, stage: Stage, name: str, value, prog_bar: bool = False, batch_size: Optional[int] = None):
        """Log ``<stage>/<name>``: in training ``train/<name>_step`` and the epoch mean ``train/<name>_epoch``, in
        validation and test the epoch mean.

        The one DDP rule: an epoch mean covers every process's batches (weighted by ``batch_size``, the sums of all
        processes reduced). In training the steps are summed here and ``self.log`` runs only at the steps the loggers
        write (``log_every_n_steps``) and once at the epoch's end: each ``self.log`` call costs Lightning about
        1 ms on a CPU, a twentieth of a configs/cnn.yaml step and a tenth of a configs/vae.yaml step per value.
        """
        if stage != "train":
            self.log(f"{stage}/{name}", value, on_epoch=True, prog_bar=prog_bar, batch_size=batch_size, sync_dist=True)
            return
        value = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
        self._train_last[name] = value
        n = batch_size or 1
        self.add_to_epoch(f"train/{name}_epoch", value * n, n, prog_bar=prog_bar)
        trainer = attached_trainer(self)
        if trainer is not None and logs_this_step(trainer):
            self.log(f"train/{name}_step", value, on_step=True, on_epoch=False, prog_bar=prog_bar, sync_dist=True)

    def train_step_values(self) -> dict[str, torch.Tensor]:
        """``{"train/<name>": value}``: the newest value of each name :meth:`log_stage` got in training (those of
        the current step once the step has logged them), whether or not this step passed them to ``self.log``."""
        return {f"train/{name}": value for name, value in self._train_last.items()}

    def add_to_epoch(self, key: str, total, count: int, prog_bar: bool = False) -> None:
        """Add ``total`` (a sum over ``count`` training images, e.g. a loss times the batch size or the correct
        predictions) to this training epoch's ``key``; at the epoch's end ``key`` is logged as the sum over the sum
        of images, both summed over every process. Nothing goes through ``self.log`` before then."""
        old_total, old_count, _ = self._train_sums.get(key, (0.0, 0, prog_bar))
        self._train_sums[key] = (old_total + total, old_count + count, prog_bar)

    def on_train_epoch_end(self) -> None:
        """Log the training epoch's means (models that override this hook call ``super().on_train_epoch_end()``)."""
        reduce = self.trainer.strategy.reduce
        for key, (total, count, prog_bar) in self._train_sums.items():
            total = reduce(torch.as_tensor(total, device=self.device).float(), reduce_op="sum")
            count = reduce(torch.tensor(float(count), device=self.device), reduce_op="sum")
            # the same value on every process: sync_dist averages equal numbers (and keeps Lightning quiet)
            self.log(key, total / count, on_epoch=True, prog_bar=prog_bar, sync_dist=True)
        self._train_sums.clear()

    def configure_optimizers(self):
        return build_optimizer(self, self.parameters(), self.optim)

    # ---- optional hooks: the CLI and the callbacks call these; the defaults do nothing ----------
    def check_trainer(self, trainer: L.Trainer) -> None:
        """Refuse a trainer this model cannot run with (raise ValueError). ``dlmnist fit`` calls it before the run
        folder is made, so the refusal is a usage error and nothing is written."""

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The representation of images ``x`` (B, 1, 28, 28) that latent-space analysis measures, (B, D): the
        encoder's output by default (``dlmnist latent``, ``dlmnist.callbacks.LatentSpace``)."""
        encoder = getattr(self, "encoder", None)
        if encoder is None:
            raise TypeError(f"{type(self).__name__} has no encoder: no codes to analyse")
        return encoder(x)

    def reconstruction_panels(self, x: torch.Tensor) -> Optional[list[tuple[str, torch.Tensor]]]:
        """Titled image batches ``[(title, (N, 1, H, W) in [0, 1]), ...]`` for the reconstruction pictures that
        ``dlmnist.callbacks.ReconstructionGrid`` logs; ``None`` for a model that does not reconstruct."""
        return None

    def write_predictions(self, outputs: list, folder: Path) -> Optional[Path]:
        """Write the outputs of ``predict_step`` over the test set into the run ``folder``; return the main file
        (``dlmnist predict`` prints it), or ``None`` when the model writes nothing."""
        return None

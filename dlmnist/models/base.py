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

from dlmnist.compat import attached_trainer, given_hyperparameters, hparams_dicts, logs_this_step, mark_cli_built
from dlmnist.models.optim import Optim, build_optimizer
from dlmnist.utils.images import as_pixels
from dlmnist.utils.init_config import init_config

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
    #: ``(mean, std)`` of the inputs' standardisation: the model sees ``(pixels in [0, 1] - mean) / std``. Fit with
    #: ``MNISTDataModule`` sets it from the data module; checkpoints keep it (:meth:`predict_images` applies it).
    input_normalization: tuple[float, float] = (0.0, 1.0)

    def __init__(self, optim: Optim = Optim()) -> None:
        super().__init__()
        self.optim = Optim.of(optim)
        self._train_sums: dict = {}  # {logged key: (sum, images, prog_bar)}: add_to_epoch, this training epoch
        self._train_last: dict = {}  # {name: value}: the newest training value of each name given to log_stage

    def save_hparams(self, submodules: tuple[str, ...] = ()) -> None:
        """``save_hyperparameters`` of the calling ``__init__`` that keeps sub-modules reloadable.

        Built by the CLI, the sub-modules' ``class_path``/``init_args`` are saved as the config gave them. Built in
        Python, each sub-module that records its arguments (every encoder and decoder of ``dlmnist.nn``:
        :class:`~dlmnist.utils.init_config.RemembersInit`) is saved in the same form, so that
        ``load_from_checkpoint(path)`` rebuilds the model either way. A sub-module of another kind is left out
        (its weights are in the state dict): pass it again, ``load_from_checkpoint(path, encoder=...)``.
        """
        frame = inspect.currentframe().f_back
        if given_hyperparameters() is not None:
            self.save_hyperparameters(frame=frame)
        else:
            self.save_hyperparameters(ignore=list(submodules), frame=frame)
            own = inspect.signature(type(self).__init__).parameters
            configs = {name: init_config(frame.f_locals[name]) for name in submodules if name in own}
            if all(config is not None for config in configs.values()):
                for hparams in hparams_dicts(self):  # as the CLI saves them: this class's own arguments only
                    hparams.update(configs)
                    for key in [k for k in hparams if k not in own]:
                        del hparams[key]
                    mark_cli_built(hparams, type(self))
        # an Optim given in Python is kept as a dict, as the CLI gives it: the loggers cannot write a frozen
        # dataclass (Lightning's hparams.yaml), and Optim.of reads the dict back on load_from_checkpoint
        for hparams in hparams_dicts(self):
            for key, value in hparams.items():
                if dataclasses.is_dataclass(value) and not isinstance(value, type):
                    hparams[key] = dataclasses.asdict(value)

    # ---- inputs: the preprocessing travels with the model ---------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(attached_trainer(self), "datamodule", None)
        if stage == "fit" and hasattr(datamodule, "pixel_normalization"):
            self.input_normalization = tuple(datamodule.pixel_normalization)
        super().setup(stage)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["dlmnist"] = {"input_normalization": list(self.input_normalization)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "dlmnist" in checkpoint:
            self.input_normalization = tuple(checkpoint["dlmnist"]["input_normalization"])

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] ``(N, 1, 28, 28)`` -> the model's input, standardised as in its training."""
        mean, std = self.input_normalization
        return (pixels - mean) / std

    @torch.no_grad()
    def predict_images(self, images) -> torch.Tensor:
        """:meth:`predicts` for images as users hold them: uint8 (0-255) or float (0-1) tensors or NumPy arrays of
        shape ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, or PIL images (one or a list); normalised as in training,
        run in eval mode (the model's mode is restored afterwards)."""
        x = self.normalize(as_pixels(images).to(self.device))
        training = self.training
        self.eval()
        try:
            return self.predicts(x)
        finally:
            self.train(training)

    def predicts(self, x: torch.Tensor) -> torch.Tensor:
        """What :meth:`predict_images` returns for normalised images ``x`` (N, 1, 28, 28): ``self(x)`` here."""
        return self(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 1, 28, 28)`` in [0, 1] for codes ``z`` (N, D) (``dlmnist export --part decoder``)."""
        raise TypeError(f"{type(self).__name__} has no decoder")

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

"""Callbacks that make a fit safe to interrupt: exact resume, a checkpoint on a crash, a stop on a NaN loss.

- ``RNGState``: puts the torch / numpy / Python RNG states into every checkpoint and restores them on
  resume (Lightning does not), so dropout masks after a resume are those of an uninterrupted run.
- ``ResumeCheckpoint``: ``checkpoints/last.ckpt`` at the end of a fit and when a fit raises (an error,
  Ctrl+C), with the state after the last finished step, so ``--ckpt_path last`` continues from there.
- ``FiniteLossGuard``: before each backward pass, stops the fit with ``NonFiniteLossError`` naming
  the step and the non-finite losses; no step is taken and no checkpoint is written from that state.
- ``finish_wandb``: closes the W&B run at the end of each command, marked failed when it raises.
"""

from __future__ import annotations

import math
import os
import random
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from dlmnist.compat import (
    apply_loader_states,
    combined_loader,
    forget_wandb_run,
    step_logged_values,
    uncount_stepped_batch,
    wandb_run,
)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and the loss."""


class RNGState(Callback):
    """Save and restore the global RNG states with each checkpoint (plain tensors and lists, weights_only-safe)."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


class ResumeCheckpoint(Callback):
    """Keep ``last.ckpt`` a state a fit can continue from exactly.

    - on resume, makes sure the training loader gets its saved state (which batches are done);
    - at the end of a fit, saves the final state (Lightning's ModelCheckpoint may have saved an earlier one);
    - when a fit raises (an error, Ctrl+C), saves the state after the last finished step;
    - a fit stopped by ``max_steps`` is recorded as stopped inside its epoch (Lightning counts that epoch
      as finished, so a resume would skip the rest of it, or a whole epoch).
    Written to a temporary file and renamed, so a crash while saving leaves the previous ``last.ckpt``.
    Nothing is saved on ``NonFiniteLossError`` (that state is broken), nor on an exception under a
    multi-process strategy (saving is collective there): use ``--checkpoint_every_n_steps`` there.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self._crashed = False

    def _save(self, trainer: L.Trainer) -> None:
        tmp = self.path.with_name(f".{self.path.name}.partial")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning hands the saved loader state to the loader when it sets the loader up after restoring
        # a checkpoint; a model reading trainer.estimated_stepping_batches in configure_optimizers (one-cycle)
        # sets it up before, and the state is never applied. Apply it now (a no-op once applied).
        apply_loader_states(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0 and not trainer.fast_dev_run:
            self._save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING  # also when it raised during validation
        if not fitting or isinstance(exception, NonFiniteLossError) or trainer.world_size > 1:
            return
        if trainer.global_step == 0 or trainer.fast_dev_run:
            return  # nothing trained yet: keep whatever is there
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed  # the failed batch is not done
        loader = combined_loader(trainer)
        for dl in loader.flattened if loader is not None else ():
            if hasattr(dl, "rewind"):
                dl.rewind(done)
        self._crashed = True
        try:
            self._save(trainer)
        except Exception as e:  # never hide the original error behind a saving error
            self.path.with_name(f".{self.path.name}.partial").unlink(missing_ok=True)
            print(f"dlmnist: could not write the crash checkpoint {self.path}: {e}", file=sys.stderr)
            return
        print(
            f"dlmnist: {type(exception).__name__} at step {trainer.global_step}; the state after that step is in "
            f"{self.path}: continue with --ckpt_path last",
            file=sys.stderr,
        )

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._crashed:  # Lightning adds one logging step on resume, right for a save after a step only
            uncount_stepped_batch(checkpoint)
            self._crashed = False
        # Saved after Lightning counted the epoch as processed (at the end of a fit, or at the end of an
        # epoch without validation): record it as saved during the epoch, as after validation, which
        # Lightning resumes correctly (otherwise a resume skips the rest of the epoch or a whole epoch).
        epochs = trainer.fit_loop.epoch_progress.current
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        if not (trainer.training and done > 0 and epochs.processed == epochs.started > 0):
            return
        state = checkpoint["loops"]["fit_loop"]["epoch_progress"]
        for part in ("total", "current"):
            state[part]["processed"] = state[part]["completed"] = state[part]["started"] - 1
        checkpoint["epoch"] = state["current"]["completed"]


def _logged_this_step(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
    """Values the training step logged: those a dlmnist model gave ``log_stage`` (which passes them to ``self.log``
    only at the steps the loggers write), and those logged with ``on_step`` (Lightning's result collection)."""
    step_values = getattr(pl_module, "train_step_values", None)  # a dlmnist model's; a plain LightningModule has none
    found = {k: float(v) for k, v in step_values().items()} if callable(step_values) else {}
    for name, value in step_logged_values(trainer).items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            found[name] = float(value)
    return found


class FiniteLossGuard(Callback):
    """Stop the fit at the first NaN/inf loss, before its backward pass and optimizer step.

    Works for every model: it checks the loss that ``training_step`` returned (one scalar check per step).
    """

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        # a scalar loss (automatic optimization's): one read of its value, which any check waits for anyway, and
        # much cheaper than isfinite + all + bool, which launch three tensor operations every step
        finite = math.isfinite(loss.item()) if loss.numel() == 1 else bool(torch.isfinite(loss.detach()).all())
        if finite:
            return
        logged = {k: v for k, v in _logged_this_step(trainer, pl_module).items() if not np.isfinite(v)}
        named = ", ".join(f"{k}={v}" for k, v in sorted(logged.items())) or "no logged loss was non-finite"
        batch = trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1
        raise NonFiniteLossError(
            f"non-finite loss at global step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch}): "
            f"training_step returned loss={loss.detach().float().item()}; logged: {named}. "
            "Training stopped before this step; the checkpoints hold the last good state. "
            "Try a lower learning rate or check the inputs."
        )


def finish_wandb(loggers: list, exit_code: int) -> None:
    """End the W&B run of these loggers (Lightning's WandbLogger leaves it open, also when training raises).

    Called by the CLI after each command, so a second command in the same process (a notebook, the tests)
    starts its own run and a failed run is closed, marked with ``exit_code``.
    """
    for logger in loggers:
        run = wandb_run(logger) if type(logger).__name__ == "WandbLogger" else None
        if run is not None and hasattr(run, "finish"):
            run.finish(exit_code=exit_code)
            forget_wandb_run(logger)

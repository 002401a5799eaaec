"""Callbacks that time dlmnist training from inside the real Trainer (used by `make bench` only)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch

from dlmnist.data import MNISTDataModule


@torch.no_grad()
def test_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    model.eval()
    chunks = range(0, len(x), batch)
    correct = sum((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum().item() for i in chunks)
    return round(correct / len(x), 4)


CHECKS_PER_EPOCH = 8  # test-accuracy checks per epoch of the time-to-99% runs, the same for every side


class EpochTimer(L.Callback):
    """Wall time from the start of the first training epoch to the end of fit (checkpoint included), and the time
    of every step (from the end of one batch to the end of the next: fetching, forward, backward, optimizer, the
    hooks), so that the per-step cost and the epoch's end (checkpoints, logging) can be told apart."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.steps: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.t = self.mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.steps.append(now - self.mark)
        self.mark = now

    def on_fit_end(self, trainer, pl_module) -> None:
        end = time.perf_counter()
        times = {"epoch_s": end - self.t, "steps_s": self.steps, "after_last_step_s": end - self.mark}
        self.out.write_text(json.dumps(times))


class TimeToAccuracy(L.Callback):
    """Check the test accuracy every eighth of an epoch; the clock stops while it is checked.

    Records the training wall time (validation included, as `dlmnist fit` runs it) until the test
    accuracy first reaches ``target``, and lets the run finish its full schedule for the final accuracy.
    """

    def __init__(self, out: str, data_dir: str, target: float = 0.99, checks_per_epoch: int = CHECKS_PER_EPOCH) -> None:
        self.out, self.target, self.checks = Path(out), target, checks_per_epoch
        dm = MNISTDataModule(data_dir=data_dir)
        dm.setup("test")
        self.x, self.y = dm.test_x, dm.test_y
        self.clock, self.reached, self.history = 0.0, None, []

    def on_train_start(self, trainer, pl_module) -> None:
        self.every = max(1, trainer.num_training_batches // self.checks)
        self.t = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        last = batch_idx + 1 == trainer.num_training_batches
        if (batch_idx + 1) % self.every and not last:
            return
        self.clock += time.perf_counter() - self.t
        acc = test_accuracy(pl_module, self.x, self.y)
        pl_module.train()
        epoch = round(trainer.current_epoch + (batch_idx + 1) / trainer.num_training_batches, 3)
        self.history.append((epoch, round(self.clock, 2), acc))
        if self.reached is None and acc >= self.target:
            self.reached = round(self.clock, 2)
        self.t = time.perf_counter()

    def on_fit_end(self, trainer, pl_module) -> None:
        result = {
            "seed": torch.initial_seed(),
            "time_to_target_s": self.reached,
            "final_test_acc": self.history[-1][2] if self.history else None,
            "train_wall_s": round(self.clock, 2),
            "history": self.history,
        }
        self.out.write_text(json.dumps(result))

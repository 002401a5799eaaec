"""Callbacks that tests add on the command line (``--trainer.callbacks+=tests.fault_callbacks.X``) to make
a real fit fail in a controlled way, or to record what each process trained on."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class RaiseAtStep(Callback):
    """Raise when the batch of global step ``step`` starts (a crash inside a step; ``interrupt``: Ctrl+C;
    ``kill``: the process ends at once, as on SIGKILL or a power cut, with no exception handling)."""

    def __init__(self, step: int, interrupt: bool = False, kill: bool = False) -> None:
        self.step = step
        self.interrupt = interrupt
        self.kill = kill

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            if self.kill:
                os._exit(9)
            raise (KeyboardInterrupt if self.interrupt else RuntimeError)(f"injected crash at step {self.step}")


class HoldAtFirstBatch(Callback):
    """When the first training batch starts, write the file ``marker`` and hold there until the process is
    signalled (SIGINT raises KeyboardInterrupt out of the sleep; SIGTERM or SIGKILL end it), so that a test can
    wait for the marker and then stop a job that is certainly still training, however loaded the machine.

    Holds once: if ``marker`` already exists the run goes through (a resumed suite reruns the same arguments).
    Never signalled within ``hold_s``, it raises, so that a broken test fails instead of hanging."""

    def __init__(self, marker: str, hold_s: float = 600.0) -> None:
        self.marker = marker
        self.hold_s = hold_s

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        marker = Path(self.marker)
        if marker.exists():
            return
        partial = marker.with_name(marker.name + ".partial")  # the marker appears whole, in one rename
        partial.write_text(str(os.getpid()))
        partial.replace(marker)
        deadline = time.monotonic() + self.hold_s
        while time.monotonic() < deadline:
            time.sleep(0.05)  # short slices: a signal's Python handler runs between them at the latest
        raise RuntimeError(f"HoldAtFirstBatch: held {self.hold_s} s at {marker} and no signal came")


class PoisonAtStep(Callback):
    """Set every parameter to NaN when the batch of global step ``step`` starts, so its loss is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


class RecordTrainingImages(Callback):
    """Write ``<folder>/rank<r>.json``: per epoch, a fingerprint (pixel sum) of every training image this
    process saw, to check that processes get disjoint shards that cover the training set, and the sum of
    its batches' losses weighted by batch size, to check the logged epoch loss against all processes."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.seen: dict[int, list[float]] = {}
        self.loss_sum: dict[int, float] = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        x, _ = batch
        self.seen.setdefault(trainer.current_epoch, []).extend(x.flatten(1).double().sum(1).tolist())

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        weighted = float(outputs["loss"]) * len(batch[0])
        self.loss_sum[trainer.current_epoch] = self.loss_sum.get(trainer.current_epoch, 0.0) + weighted

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = Path(self.folder) / f"rank{trainer.global_rank}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"world_size": trainer.world_size, "seen": self.seen, "loss_sum": self.loss_sum}
        path.write_text(json.dumps(record))


class RecordLabelledImages(Callback):
    """Write ``<folder>/labelled.json``: fingerprints (pixel sums) of the distinct images a fit trained and
    validated on, to count the labels a run has read."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.train: set[float] = set()
        self.val: set[float] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.train.update(batch[0].flatten(1).double().sum(1).tolist())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.val.update(batch[0].flatten(1).double().sum(1).tolist())

    def on_fit_end(self, trainer, pl_module) -> None:
        path = Path(self.folder) / "labelled.json"
        path.write_text(json.dumps({"train": sorted(self.train), "val": sorted(self.val)}))


class RecordCallbacks(Callback):
    """Write ``<out>``: the class names of the callbacks attached to the trainer, when its command starts."""

    def __init__(self, out: str) -> None:
        self.out = out

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        Path(self.out).write_text(json.dumps(sorted(type(c).__name__ for c in trainer.callbacks)))


class RecordFit(Callback):
    """Write ``<out>``: what a fit did: the optimizer steps taken, whether every gradient stepped with was finite
    and some nonzero, the parameters that changed from the start of the fit, and the metrics logged at its end."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.start: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.grads_finite = True
        self.grads_nonzero = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {name: p.detach().clone() for name, p in pl_module.named_parameters()}

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        self.steps += 1
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.grads_finite &= all(bool(torch.isfinite(g).all()) for g in grads)
        self.grads_nonzero |= any(bool(g.any()) for g in grads)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        params = dict(pl_module.named_parameters())
        changed = sorted(n for n, p in params.items() if n in self.start and not torch.equal(p.detach(), self.start[n]))
        record = {
            "global_step": trainer.global_step,
            "optimizer_steps": self.steps,
            "grads_finite": self.grads_finite,
            "grads_nonzero": self.grads_nonzero,
            "changed": changed,
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        }
        Path(self.out).write_text(json.dumps(record))

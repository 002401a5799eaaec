"""Time and memory per training step: what a larger batch (or the whole training set as one) costs.

``--trainer.callbacks+=dlmnist.callbacks.StepStats`` (``configs/mlp.yaml`` and so the batch study carry it). At
the end of every training epoch it logs to the run's loggers (``metrics.csv``, W&B):

- ``perf/step_ms``: the median wall time of the epoch's training steps (forward, backward and optimizer step;
  from batch start to batch end, after a CUDA synchronisation on a GPU), in milliseconds;
- ``perf/images_per_s``: the batch size over that median time;
- ``perf/peak_mem_mb``: on a GPU, the peak memory PyTorch allocated during the epoch
  (``torch.cuda.max_memory_allocated``); on a CPU, the peak resident memory of the whole process so far
  (``ru_maxrss``: it includes the data set held in memory and never goes down).
"""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: allocated by PyTorch on a CUDA device (since the last reset), else the process's RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class StepStats(L.Callback):
    """Log the median training-step time, images per second and peak memory at the end of every epoch."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._sizes: list[int] = []
        self._start = 0.0

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._times, self._sizes = [], []
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._sync(pl_module)
        self._times.append(time.perf_counter() - self._start)
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        self._sizes.append(len(first) if isinstance(first, torch.Tensor) else 0)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._times:
            return
        step = statistics.median(self._times)
        metrics = {
            "perf/step_ms": 1000 * step,
            "perf/images_per_s": statistics.median(self._sizes) / step,
            "perf/peak_mem_mb": peak_memory_mb(pl_module.device),
            "epoch": trainer.current_epoch,  # as Lightning adds it to what a module logs
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=max(trainer.global_step - 1, 0))  # the step Lightning gives epoch ends

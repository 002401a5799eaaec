"""Callbacks that write a run's results into its folder: test metrics and predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter, Callback

from dlmnist.utils.files import atomic_write_text, run_dir


class TestMetricsWriter(Callback):
    """After ``test``, write ``<run>/test_metrics.json`` with every ``test/...`` metric under its logged name.

    ``<run>/test_metrics.json`` holds the newest test of the run; a copy goes into that test's own log folder
    (``test/``, ``test-2/``, ...), so an earlier test's report is never lost.

    A test that did not see the whole test set (``--trainer.limit_test_batches``, ``fast_dev_run``) is marked:
    ``"partial": true`` with ``"test_images"`` (the images tested, over all processes) and
    ``"test_images_total"``.
    """

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.images = 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.images += len(x)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        metrics = {k: (v if math.isfinite(v) else str(v)) for k, v in sorted(metrics.items())}
        loaders = trainer.test_dataloaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        full = [len(dl) for dl in loaders]
        if list(trainer.num_test_batches) != full:  # limit_test_batches / fast_dev_run cut the test set short
            total = sum(len(getattr(dl, "x", getattr(dl, "dataset", []))) for dl in loaders)
            images = getattr(self, "images", 0) * trainer.world_size
            metrics.update(partial=True, test_images=images, test_images_total=total)
        text = json.dumps(metrics, indent=2) + "\n"
        atomic_write_text(run_dir(trainer) / "test_metrics.json", text)
        log_dir = getattr(trainer.logger, "log_dir", None)  # not trainer.log_dir: that is collective under DDP
        own = Path(log_dir) if log_dir else None
        if own is not None and own.resolve() != run_dir(trainer).resolve():
            atomic_write_text(own / "test_metrics.json", text)


class PredictionWriter(BasePredictionWriter):
    """After ``predict``, hand all outputs to the model's ``write_predictions(outputs, folder)``."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if not trainer.is_global_zero:
            return
        outputs = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        path = pl_module.write_predictions(outputs, run_dir(trainer))
        if path is not None:
            print(f"predictions written to {path}")

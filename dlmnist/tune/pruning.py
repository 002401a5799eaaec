"""Optuna pruning for a Lightning run: report the validation metric each epoch, stop the trial when told."""

from __future__ import annotations

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback


class OptunaPruning(Callback):
    """Reports the model's ``monitor`` metric to ``trial`` after every validation and raises
    ``optuna.TrialPruned`` when the study's pruner judges the trial hopeless (what optuna-integration's
    PyTorchLightningPruningCallback does, for one process). Also records the run folder on the trial."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.trial.set_user_attr("run_dir", str(trainer.default_root_dir))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metric = pl_module.monitor[0]
        value = trainer.callback_metrics.get(metric)
        if value is None:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: {metric} = {float(value):.4f}")

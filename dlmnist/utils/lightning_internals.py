"""The one place that touches Lightning's private attributes.

pyproject.toml bounds Lightning to the minor versions this was tested with; ``tests/test_house.py`` fails
loudly when one of these attributes vanishes from the installed Lightning.
"""

from __future__ import annotations

from typing import Any, Optional

from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters


def given_hyperparameters() -> Optional[dict]:
    """The init arguments LightningCLI is instantiating a model with (``None`` outside the CLI)."""
    return _given_hyperparameters.get()


def combined_loader(trainer) -> Any:
    """The fit loop's combined training loader (``None`` before fit has set it up)."""
    return trainer.fit_loop._combined_loader


def uncount_stepped_batch(checkpoint: dict) -> None:
    """One logging step fewer in a checkpoint: Lightning adds one on resume, right for a save after a step only."""
    checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1


def logs_this_step(trainer) -> bool:
    """Whether the loggers write step values after the current training step (every ``log_every_n_steps``)."""
    return trainer._logger_connector.should_update_logs


def wandb_run(logger) -> Any:
    """The W&B run a WandbLogger holds, without starting one (``None`` when it has none)."""
    return getattr(logger, "_experiment", None)


def forget_wandb_run(logger) -> None:
    logger._experiment = None


def train_progress_bar(trainer) -> Any:
    """The training bar of a TQDMProgressBar (``None`` with another bar or none)."""
    return getattr(trainer.progress_bar_callback, "_train_progress_bar", None)

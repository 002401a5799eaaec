"""The one place that touches Lightning's private attributes.

pyproject.toml bounds Lightning to the minor versions this was tested with; ``tests/test_house.py`` fails
loudly when one of these attributes vanishes from the installed Lightning.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any, Optional

from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def nvidia_driver_present() -> bool:
    """Whether this Linux machine has an NVIDIA driver (its NVML or CUDA driver library loads; neither starts CUDA)."""
    for name in ("libnvidia-ml.so.1", "libcuda.so.1"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


def drop_nvml_check_without_driver() -> None:
    """Undo Lightning's ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on a Linux machine with no NVIDIA driver.

    Lightning sets it at import so that ``torch.cuda.is_available()`` asks NVML instead of starting CUDA in a
    process that may fork. Without a driver torch then tries to load NVML again at every call (about 50 us here),
    and AdamW calls it every step: 0.2-0.3 ms of a 27 ms configs/cnn.yaml step. With no driver there is no CUDA to
    keep out of a fork, so the variable goes; with one, or on another system, Lightning's setting stays.
    """
    if sys.platform.startswith("linux") and os.environ.get(NVML_CHECK) == "1" and not nvidia_driver_present():
        del os.environ[NVML_CHECK]


drop_nvml_check_without_driver()  # at import: the model base imports this module, so every training runs after it


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

"""What the CLI gives each command's Trainer: the callbacks that act in it, the loggers, the precision."""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import torch
from jsonargparse import Namespace
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

from dlmnist.callbacks.reconstructions import ReconstructionGrid
from dlmnist.callbacks.safety import FiniteLossGuard, ResumeCheckpoint, RNGState
from dlmnist.callbacks.writers import PredictionWriter, TestMetricsWriter
from dlmnist.cli.errors import SetupError
from dlmnist.compat import BF16_FLAGS, cpu_native_bf16
from dlmnist.extras import require
from dlmnist.models.base import Model

CSV = "lightning.pytorch.loggers.CSVLogger"
PROGRESS_REFRESH = 25  # steps between progress bar refreshes: a per-step refresh costs real time on a CPU


class _NoAdvert(logging.Filter):
    """Drop Lightning's "Tip: For seamless cloud logging ... litlogger" line, printed by every Trainer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_NoAdvert())


WANDB_OFFLINE_MODES = ("offline", "dryrun", "disabled")


def wandb_account_configured() -> bool:
    """True when W&B has an API key here: ``WANDB_API_KEY``, or a key ``wandb login`` stored in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _as_list(loggers) -> list:
    return [] if loggers in (None, True, False) else (loggers if isinstance(loggers, list) else [loggers])


def check_loggers(trainer: Namespace) -> None:
    """Refuse, before any folder is made, a W&B logger that would go online without an account here.

    Online is W&B's default (``offline: false``) unless ``mode`` or ``WANDB_MODE`` says offline or disabled.
    """
    for lg in _as_list(trainer.logger):
        if "WandbLogger" in lg.class_path:
            require("wandb", "the W&B logger")  # the [wandb] extra
        if "WandbLogger" not in lg.class_path or lg.init_args.get("offline"):
            continue
        mode = lg.init_args.get("mode") or os.environ.get("WANDB_MODE") or "online"
        if mode not in WANDB_OFFLINE_MODES and not wandb_account_configured():
            raise SetupError(
                "W&B logs online and no W&B account is set up here: set WANDB_API_KEY or run `wandb login`, "
                "or log offline with --trainer.logger.offline=true or WANDB_MODE=offline"
            )


def set_loggers(trainer: Namespace, run: Path, sub: str) -> None:
    """A CSVLogger into the run folder (its ``sub`` folder) before the configured loggers, which are used as given:
    only a ``save_dir`` left at ``.`` (WandbLogger's default) goes into the run folder, and a W&B run with no name
    is named after the run folder."""
    if trainer.logger is False:
        return
    loggers = _as_list(trainer.logger)
    csv = Namespace(class_path=CSV, init_args=Namespace(save_dir=str(run), name="", version=sub))
    for lg in loggers:
        if lg.init_args.get("save_dir") in (None, "."):
            lg.init_args.save_dir = str(run)
        if "WandbLogger" in lg.class_path and not lg.init_args.get("name"):
            lg.init_args.name = f"{run.parent.name}/{run.name}" + (f"/{sub}" if sub else "")
    trainer.logger = [csv, *loggers]


def trainer_error(trainer: Namespace, error: Exception) -> SetupError:
    """Lightning's refusal of the trainer's settings (an accelerator this machine lacks, too many devices) in one
    line, with what to do where there is no GPU at all."""
    accelerator = str(trainer.get("accelerator"))
    if accelerator in ("gpu", "cuda", "mps") and not (CUDAAccelerator.is_available() or MPSAccelerator.is_available()):
        return SetupError(
            f"trainer.accelerator={accelerator}: no GPU on this machine; use --trainer.accelerator=cpu, "
            "or auto (a GPU where there is one)"
        )
    return SetupError("trainer: " + " ".join(str(error).split()))


def bf16_fallback(trainer: Namespace) -> None:
    """bf16 on a CPU without native bf16 would run slower than float32: train in float32, and say so."""
    precision = str(trainer.get("precision"))
    if not precision.startswith("bf16") or trainer.get("accelerator") not in ("cpu", "auto"):
        return
    if trainer.get("accelerator") == "auto" and torch.cuda.is_available():
        return
    if not cpu_native_bf16():
        flags = " or ".join(BF16_FLAGS)
        print(f"dlmnist: this CPU has no native bf16 ({flags}): precision {precision} -> 32-true (float32)",
              file=sys.stderr)
        trainer.precision = "32-true"


def command_callbacks(command: str, model: Model, run: Path, every: int | None, progress_bar: bool) -> list:
    """The callbacks of one command, each only where it acts: Lightning calls every attached callback at each of
    its hooks (six of them every training step) whether it acts there or not."""
    ckpt_dir = run / "checkpoints"
    monitor, mode = model.monitor
    callbacks = [
        ModelCheckpoint(  # best.ckpt by the model's validation metric
            dirpath=ckpt_dir,
            filename="best",
            monitor=monitor,
            mode=mode,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        ModelCheckpoint(  # last.ckpt after every epoch (or every N steps): Lightning's save_last skips
            dirpath=ckpt_dir,  # epochs where the monitored metric did not improve
            filename="last",
            save_top_k=1,
            every_n_train_steps=every,
            enable_version_counter=False,
        ),
        RNGState(),
        ResumeCheckpoint(ckpt_dir),
        FiniteLossGuard(),
    ]
    if command == "test":
        callbacks.append(TestMetricsWriter())
    if command == "predict":
        callbacks.append(PredictionWriter())
    draws = type(model).reconstruction_panels is not Model.reconstruction_panels  # the base draws nothing
    if command != "predict" and draws:  # drawn after validation and test epochs
        callbacks.append(ReconstructionGrid())
    if progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=PROGRESS_REFRESH))
    return callbacks

"""What the CLI gives each command's Trainer: the callbacks that act in it, the loggers, the precision."""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

from dlmnist.callbacks.reconstructions import ReconstructionGrid
from dlmnist.callbacks.safety import FiniteLossGuard, ResumeCheckpoint, RNGState
from dlmnist.callbacks.writers import PredictionWriter, TestMetricsWriter
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


def wandb_account_configured() -> bool:
    """True when W&B can go online: WANDB_MODE/WANDB_API_KEY set, or a key stored by ``wandb login``."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def set_loggers(trainer: Namespace, run: Path, sub: str) -> None:
    """A CSVLogger into the run folder (its ``sub`` folder) beside the configured loggers, which also write into
    the run folder; a W&B logger is named after the run and goes offline when no account is set up."""
    loggers = trainer.logger
    if loggers is False:
        return
    loggers = [] if loggers in (None, True) else (loggers if isinstance(loggers, list) else [loggers])
    others = [lg for lg in loggers if lg.class_path != CSV]
    csv = Namespace(class_path=CSV, init_args=Namespace(save_dir=str(run), name="", version=sub))
    for lg in others:
        lg.init_args.save_dir = str(run)
        if "WandbLogger" in lg.class_path:
            require("wandb", "the W&B logger")
            if not lg.init_args.get("name"):
                lg.init_args.name = f"{run.parent.name}/{run.name}" + (f"/{sub}" if sub else "")
            if not lg.init_args.get("offline") and not wandb_account_configured():
                lg.init_args.offline = True
    trainer.logger = [csv, *others]


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

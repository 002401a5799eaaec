"""The ``dlmnist`` command: a thin LightningCLI subclass that puts every run in ``runs/<name>/version_<n>/``.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.csv``, ``checkpoints/best.ckpt``
(by the model's validation metric) and ``checkpoints/last.ckpt``; ``test`` adds ``test_metrics.json``,
``predict`` its output files. A new ``fit`` always gets a new version folder, so nothing an earlier
run made is overwritten; ``--ckpt_path`` (a path, or ``best``/``last`` for the newest run) makes
``test``/``validate``/``predict`` write into the folder of that checkpoint's run and ``fit`` resume there.
"""

from __future__ import annotations

import difflib
import logging
import netrc
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

import torch
import yaml
from jsonargparse import Namespace
from jsonargparse.typing import PositiveInt
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from dlmnist.callbacks.reconstructions import ReconstructionGrid
from dlmnist.callbacks.safety import (
    FiniteLossGuard,
    NonFiniteLossError,
    ResumeCheckpoint,
    RNGState,
    finish_wandb,
)
from dlmnist.callbacks.writers import PredictionWriter, TestMetricsWriter
from dlmnist.cli_help import reorder
from dlmnist.config import PARSER_MODE, error_reason
from dlmnist.data import DataError, MNISTDataModule
from dlmnist.models.base import Model
from dlmnist.models.pretrained import EncoderCheckpointError
from dlmnist.utils.curves import read_metrics, read_test, save_curves
from dlmnist.utils.hardware import BF16_FLAGS, cpu_native_bf16

CSV = "lightning.pytorch.loggers.CSVLogger"
PROGRESS_REFRESH = 25  # steps between progress bar refreshes: a per-step refresh costs real time on a CPU


class _NoAdvert(logging.Filter):
    """Drop Lightning's "Tip: For seamless cloud logging ... litlogger" line, printed by every Trainer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_NoAdvert())


def _first_process() -> bool:
    """False in the processes a DDP launch adds (every DDP process runs the CLI)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def _say(text: str) -> None:
    """Print once, from the first process."""
    if _first_process():
        print(text, flush=True)


RUN_ENV = "DLMNIST_RUN_FOLDER"  # the first process's run folder and log subfolder, inherited by the DDP processes


class DLMNISTParser(LightningArgumentParser):
    """LightningCLI's parser with short errors: the reason a value was refused, not a page of usage.

    jsonargparse reports a model that refused an argument as "Does not validate against any of the Union
    subtypes" followed by every subtype tried and a dump of the whole model config; this keeps the reasons.
    ``dlmnist <command> --help`` still prints the full usage.
    """

    given_args: Optional[list[str]] = None  # the command line, set on the subcommand parsers by DLMNISTCLI

    def short_usage(self) -> str:
        return f"usage: {self.prog.replace(' [options]', '')} [-h] [-c CONFIG] [--print_config] [options]\n"

    def print_usage(self, file=None) -> None:
        (file or sys.stdout).write(self.short_usage())

    def format_help(self, formatter=None) -> str:
        text = super().format_help() if formatter is None else super().format_help(formatter)
        if self.given_args is None:  # the top-level parser
            return text
        return reorder(text, self.given_args, self.short_usage())  # the model's and data's arguments first

    def error(self, message: str, ex: Optional[Exception] = None):
        if self.exit_on_error:  # the message printed, not one raised to be nested in another
            message = error_reason(Exception(message))
            if m := re.match(r"unrecognized arguments: (--[\w.]+)", message, re.IGNORECASE):
                close = difflib.get_close_matches(m.group(1).split("=")[0], self._option_string_actions, n=1)
                message += f" (did you mean {close[0]}?)" if close else ""
        return super().error(message, ex)


class RunConfigCallback(SaveConfigCallback):
    """Save ``config.yaml`` into the run folder and send the resolved config to every logger (e.g. W&B)."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = self.parser.dump(self.config, skip_none=False, format="yaml")
        for logger in trainer.loggers:
            if type(logger).__name__ != "CSVLogger":
                logger.log_hyperparams(yaml.safe_load(config))


def wandb_account_configured() -> bool:
    """True when W&B can go online: WANDB_MODE/WANDB_API_KEY set, or a key stored by ``wandb login``."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def config_files(argv: list[str]) -> list[Path]:
    """The ``-c``/``--config`` files of a command line, in order (not the files they include)."""
    files = [b for a, b in zip(argv, argv[1:]) if a in ("-c", "--config")]
    files += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    return [Path(f) for f in files]


def _versions(base: Path) -> list[Path]:
    found = [p for p in base.glob("version_*") if p.is_dir() and re.fullmatch(r"version_\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def _claim(path: Path) -> list[Path]:
    """Create ``path`` as this process's own (FileExistsError when another process created it first, so two
    commands started together never share a folder); the folders it made, deepest first, for :func:`_release`."""
    made = [p for p in (path, *path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    return made


def _release(made: list[Path]) -> None:
    """Remove the folders :func:`_claim` made, where they are still empty (a command that failed before writing)."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def _new_version(base: Path) -> tuple[Path, list[Path]]:
    """Claim the next free ``version_<n>``; the folders made (see :func:`_claim`)."""
    while True:
        versions = _versions(base)
        run = base / f"version_{int(versions[-1].name.split('_')[1]) + 1 if versions else 0}"
        try:
            return run, _claim(run)
        except FileExistsError:
            continue


def _newest_checkpoint(base: Path, which: str) -> Path:
    for version in reversed(_versions(base)):
        ckpt = version / "checkpoints" / f"{which}.ckpt"
        if ckpt.exists():
            return ckpt
    raise FileNotFoundError(f"--ckpt_path {which}: no run under {base} has checkpoints/{which}.ckpt")


def _run_of(ckpt: Path) -> Optional[Path]:
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None


def _free_subdir(run: Path, tag: str) -> tuple[str, list[Path]]:
    """Claim ``<run>/<tag>``, else ``<tag>-2``, ``<tag>-3``, ...; its name and the folders made."""
    name, k = tag, 1
    while True:
        try:
            return name, _claim(run / name)
        except FileExistsError:
            k += 1
            name = f"{tag}-{k}"


class DLMNISTCLI(LightningCLI):
    def __init__(self, args: Any = None, **kwargs: Any) -> None:
        super().__init__(
            model_class=Model,
            datamodule_class=MNISTDataModule,
            subclass_mode_model=True,
            save_config_callback=RunConfigCallback,
            parser_class=DLMNISTParser,
            parser_kwargs={"parser_mode": PARSER_MODE},  # a decoder's latent_dim: ${...encoder.init_args.latent_dim}
            seed_everything_default=42,
            auto_configure_optimizers=False,
            args=args,
            **kwargs,
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self.argv = [str(a) for a in (sys.argv[1:] if args is None else args)]  # the run's name: its first -c file
        for sub in self._subcommand_parsers.values():
            sub.given_args = self.argv  # fit --help: the given config's model and data arguments first
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Lightning puts a checkpoint's saved model arguments over the parsed config; a ``--model.*`` given on
        the command line (``test --ckpt_path X --model.nll_samples=5000``) is the user's word and wins."""
        sub = self.config.get("subcommand")
        keys = sorted({a[2:].split("=", 1)[0] for a in self.argv if a.startswith("--model.")})
        before = self.config[sub].clone() if sub and keys else None
        super()._parse_ckpt_path()
        if before is None:
            return
        after = self.config[sub]
        for key in keys:
            for path in (key, key.replace("model.", "model.init_args.", 1)):
                if path in before and path in after:
                    after[path] = before[path]
                    break

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--name", type=Optional[str], default=None, help="experiment name (default: config stem)")
        parser.add_argument("--runs_dir", type=str, default="runs", help="folder holding one folder per experiment")
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=Optional[PositiveInt],
            default=None,
            help="also write checkpoints/last.ckpt every N training steps (default: at the end of each epoch "
            "and when the fit raises)",
        )

    # ---- run folder -----------------------------------------------------------------------
    def _experiment_name(self, cfg: Namespace) -> str:
        if cfg.get("name"):
            return cfg.name
        configs = config_files(self.argv)
        if configs:
            return configs[0].stem
        return str(cfg.model.class_path).split(".")[-1].lower()

    def _resolve_run(self, cfg: Namespace) -> tuple[Path, str]:
        """Claim the run folder (a fresh fit) or the logger's subfolder in it (a test, a resumed fit, ...): ""
        for a fresh fit. The folders made are kept in ``self._made`` until the classes are instantiated."""
        base = Path(cfg.runs_dir) / self._experiment_name(cfg)
        ckpt = cfg.get("ckpt_path")
        if ckpt in ("best", "last"):
            ckpt = _newest_checkpoint(base, ckpt)
            cfg.ckpt_path = str(ckpt)
        elif ckpt is not None:
            ckpt = Path(ckpt)
            if not ckpt.is_file():
                raise FileNotFoundError(f"--ckpt_path {ckpt}: no such checkpoint file")
        if not _first_process():  # a DDP process Lightning started: the first process's folders, claimed there
            self._made = []
            if RUN_ENV in os.environ:
                run_dir, _, sub = os.environ[RUN_ENV].partition("\n")
                return Path(run_dir), sub
            versions = _versions(base)  # started by another launcher (torchrun): the newest run
            return (versions[-1] if versions else base / "version_0"), ""
        run, sub = self._claim_run(base, ckpt)
        os.environ[RUN_ENV] = f"{run}\n{sub}"
        return run, sub

    def _claim_run(self, base: Path, ckpt: Any) -> tuple[Path, str]:
        run = _run_of(Path(ckpt)) if ckpt is not None else None
        if run is None:
            run, self._made = _new_version(base)
            return run, ""
        sub, self._made = _free_subdir(run, "resume" if self.subcommand == "fit" else str(self.subcommand))
        return run, sub

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        try:
            run, sub = self._resolve_run(cfg)
        except FileNotFoundError as e:
            self._parser(self.subcommand).error(str(e))
        self.run_dir, self.log_sub = run, sub
        _say(f"dlmnist {self.subcommand}: run folder {run}" + (f" (log in {sub}/)" if sub else ""))
        cfg.trainer.default_root_dir = str(run)
        self._bf16_fallback(cfg.trainer)
        loggers = cfg.trainer.logger
        if loggers is False:
            return
        loggers = [] if loggers in (None, True) else (loggers if isinstance(loggers, list) else [loggers])
        others = [lg for lg in loggers if lg.class_path != CSV]
        csv = Namespace(class_path=CSV, init_args=Namespace(save_dir=str(run), name="", version=sub))
        for lg in others:
            lg.init_args.save_dir = str(run)
            if "WandbLogger" in lg.class_path:
                if not lg.init_args.get("name"):
                    lg.init_args.name = f"{run.parent.name}/{run.name}" + (f"/{sub}" if sub else "")
                if not lg.init_args.get("offline") and not wandb_account_configured():
                    lg.init_args.offline = True
        cfg.trainer.logger = [csv, *others]

    @staticmethod
    def _bf16_fallback(trainer: Namespace) -> None:
        """bf16 on a CPU without native bf16 would run slower than float32: train in float32, and say so."""
        precision = str(trainer.get("precision"))
        if not precision.startswith("bf16") or trainer.get("accelerator") not in ("cpu", "auto"):
            return
        if trainer.get("accelerator") == "auto" and torch.cuda.is_available():
            return
        if not cpu_native_bf16():
            print(f"dlmnist: this CPU has no native bf16 ({' or '.join(BF16_FLAGS)}): precision {precision} -> "
                  "32-true (float32)", file=sys.stderr)  # fmt: skip
            trainer.precision = "32-true"

    def instantiate_classes(self) -> None:
        try:
            try:
                super().instantiate_classes()
            except ValueError as e:  # an argument a model or the data module refused: report it like a parse error
                self._parser(self.subcommand).error(str(e))
        except BaseException:
            _release(getattr(self, "_made", []))  # nothing written yet: leave no empty run folder behind
            raise

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            finish_wandb(self.trainer.loggers, exit_code=1)
            _say(f"dlmnist {subcommand}: failed; run folder {self.run_dir}")
            raise
        finish_wandb(self.trainer.loggers, exit_code=0)
        if subcommand == "fit" and self.trainer.is_global_zero:
            self._save_curves()
        _say(f"dlmnist {subcommand}: done; run folder {self.run_dir}")

    def _save_curves(self) -> None:
        """``figures/curves.png`` (``figures/<sub>__curves.png`` for a resumed fit) from the fit's metrics.csv."""
        logs = self.run_dir / self.log_sub
        name = f"{self.log_sub}__curves.png" if self.log_sub else "curves.png"
        title = f"{self.run_dir.parent.name}/{self.run_dir.name}" + (f"/{self.log_sub}" if self.log_sub else "")
        path = save_curves([("", read_metrics(logs), read_test(self.run_dir))], self.run_dir / "figures" / name, title)
        if path is not None:
            _say(f"curves: {path}")

    def instantiate_trainer(self, **kwargs: Any):
        cfg = self.config[self.subcommand].trainer
        monitor, mode = self.model.monitor
        ckpt_dir = self.run_dir / "checkpoints"
        every = self.config[self.subcommand].get("checkpoint_every_n_steps")
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
        # Each callback only where it acts: Lightning calls every attached callback at each of its hooks (six
        # of them every training step) whether it acts there or not.
        if self.subcommand == "test":
            callbacks.append(TestMetricsWriter())
        if self.subcommand == "predict":
            callbacks.append(PredictionWriter())
        reconstructs = type(self.model).reconstruction_panels is not Model.reconstruction_panels  # base: None
        if self.subcommand != "predict" and reconstructs:  # drawn after validation and test epochs
            callbacks.append(ReconstructionGrid())
        if cfg.get("enable_progress_bar") is not False:
            callbacks.append(TQDMProgressBar(refresh_rate=PROGRESS_REFRESH))
        callbacks += self.trainer_defaults.get("callbacks", [])  # e.g. the pruning callback of `dlmnist tune`
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": callbacks}
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "fit":  # e.g. the stacked AE's phase schedule vs max_epochs; a ValueError becomes a
            self.model.check_trainer(trainer)  # usage error in instantiate_classes, before any file is written
        return trainer


def main(args: Any = None) -> None:
    """LightningCLI's commands (fit, validate, test, predict). The ``dlmnist`` console script is
    :func:`dlmnist.entry.main`: it answers the top-level help and the other commands without Lightning."""
    try:
        DLMNISTCLI(args=None if args is None else list(args))
    except (DataError, EncoderCheckpointError) as e:
        print(f"dlmnist: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except NonFiniteLossError as e:
        print(f"dlmnist: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

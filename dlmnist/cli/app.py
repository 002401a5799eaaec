"""The ``dlmnist`` command: a thin LightningCLI subclass that puts every run in ``runs/<name>/version_<n>/``.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.csv``, ``checkpoints/best.ckpt``
(by the model's validation metric) and ``checkpoints/last.ckpt``; ``test`` adds ``test_metrics.json``,
``predict`` its output files. A new ``fit`` always gets a new version folder, so nothing an earlier
run made is overwritten; ``--ckpt_path`` (a path, or ``best``/``last`` for the newest run) makes
``test``/``validate``/``predict`` write into the folder of that checkpoint's run and ``fit`` resume there.
Choosing and claiming the folder is :mod:`dlmnist.runs`'s; the Trainer's callbacks and loggers are
:mod:`dlmnist.cli.trainer`'s.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from jsonargparse import Namespace
from jsonargparse.typing import PositiveInt
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from dlmnist import recipes, runs
from dlmnist.argv import config_files, given_keys, wants_help, with_recipe_paths, without_help
from dlmnist.callbacks.safety import NonFiniteLossError, finish_wandb
from dlmnist.cli.errors import SetupError
from dlmnist.cli.parser import PARSER_MODE, DLMNISTParser, RunConfigCallback
from dlmnist.cli.trainer import bf16_fallback, check_loggers, command_callbacks, set_loggers, trainer_error
from dlmnist.compat import LightningCLIHooks, subcommand_parsers
from dlmnist.data import DataError, MNISTDataModule
from dlmnist.models.base import Model
from dlmnist.models.pretrained import EncoderCheckpointError
from dlmnist.runs import first_process
from dlmnist.utils.curve_figure import save_curves


def _say(text: str) -> None:
    """Print once, from the first process."""
    if first_process():
        print(text, flush=True)


class Resolved(Exception):  # noqa: N818 (not an error: how a resolve-only CLI hands back its parse)
    """Raised by a resolve-only CLI right after parsing: the subcommand's parser and the resolved config."""

    def __init__(self, parser: LightningArgumentParser, config: Namespace) -> None:
        super().__init__("resolved")
        self.parser, self.config = parser, config


class DLMNISTCLI(LightningCLIHooks, LightningCLI):
    resolve_only = False  # True: stop after parsing and raise Resolved (dlmnist.config.resolve)

    def __init__(self, args: Any = None, **kwargs: Any) -> None:
        given = sys.argv[1:] if args is None else args
        self._command = given[0] if isinstance(given, (list, tuple)) and given else None
        super().__init__(
            model_class=Model,
            datamodule_class=MNISTDataModule,
            subclass_mode_model=True,
            save_config_callback=RunConfigCallback,
            parser_class=DLMNISTParser,
            # parser_mode: a decoder's latent_dim may be ${...encoder.init_args.latent_dim}
            parser_kwargs={"parser_mode": PARSER_MODE, **kwargs.pop("parser_kwargs", {})},
            seed_everything_default=42,
            auto_configure_optimizers=False,
            args=args,
            **kwargs,
        )

    def subcommands(self) -> dict[str, set[str]]:
        """Only the named command's parser is built (a parser costs about 0.1 s of CPU each); all four when the
        command line names none of them, so its error lists them."""
        every = LightningCLI.subcommands()
        return {self._command: every[self._command]} if self._command in every else every

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self.argv = with_recipe_paths([str(a) for a in (sys.argv[1:] if args is None else args)])  # -c cnn
        if missing := [f for f in config_files(self.argv) if not Path(f).is_file()]:
            parser.error(recipes.unknown(missing[0]))
        if wants_help(self.argv):  # fit -c X --help: the resolved model's arguments first
            model = self._resolved_model(parser)
            for sub in subcommand_parsers(self).values():
                sub.help_model = model
        self.config = parser.parse_args(self.argv)  # LightningCLI's parse_arguments, given the resolved names
        if self.resolve_only:
            raise Resolved(subcommand_parsers(self)[self.config.subcommand], self.config)

    def _resolved_model(self, parser: LightningArgumentParser) -> Optional[dict]:
        """The model section the command line resolves to, the same parse without the help flag."""
        parsers = [parser, *subcommand_parsers(self).values()]
        for p in parsers:
            p.exit_on_error = False
        try:
            config = parser.parse_args(without_help(self.argv))
            return config[config.subcommand].model.as_dict()
        except (Exception, SystemExit):  # noqa: BLE001 (a command line that does not parse: no model in the help)
            return None
        finally:
            for p in parsers:
                p.exit_on_error = True

    def typed_model_keys(self) -> list[str]:
        return given_keys(self.argv, "model")

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

    def _experiment_name(self, cfg: Namespace) -> str:
        if cfg.get("name"):
            return cfg.name
        configs = config_files(self.argv)
        return Path(configs[0]).stem if configs else str(cfg.model.class_path).split(".")[-1].lower()

    def _error(self, message: str) -> None:
        subcommand_parsers(self)[self.subcommand].error(message)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        self._made: list[Path] = []
        check_loggers(cfg.trainer)  # before any folder is made
        if cfg.data.get("seed") is None and isinstance(cfg.get("seed_everything"), int):
            cfg.data.seed = cfg.seed_everything  # the data's seed follows the run's, and config.yaml says which
        base = Path(cfg.trainer.get("default_root_dir") or "") / cfg.runs_dir / self._experiment_name(cfg)
        try:
            ckpt = cfg.get("ckpt_path")
            if ckpt in ("best", "last"):
                cfg.ckpt_path = str(runs.newest_checkpoint(base, ckpt))
            elif ckpt is not None and not Path(ckpt).is_file():
                raise FileNotFoundError(f"--ckpt_path {ckpt}: no such checkpoint file")
            ckpt = Path(cfg.ckpt_path) if cfg.get("ckpt_path") else None
            self.run_dir, self.log_sub, self._made = runs.open_run(base, ckpt, self.subcommand)
        except (FileNotFoundError, FileExistsError) as e:
            self._error(str(e))
        bf16_fallback(cfg.trainer)
        set_loggers(cfg.trainer, self.run_dir, self.log_sub)

    def instantiate_classes(self) -> None:
        try:
            try:
                super().instantiate_classes()
            except ValueError as e:  # an argument a model or the data module refused: report it like a parse error
                self._error(str(e))
        except BaseException:
            runs.release(self._made)  # nothing written yet: leave no empty run folder behind
            raise
        sub = self.log_sub
        _say(f"dlmnist {self.subcommand}: run folder {self.run_dir}" + (f" (log in {sub}/)" if sub else ""))

    def instantiate_trainer(self, **kwargs: Any):
        cfg = self.config[self.subcommand]
        progress_bar = cfg.trainer.get("enable_progress_bar") is not False
        callbacks = command_callbacks(
            self.subcommand, self.model, self.run_dir, cfg.get("checkpoint_every_n_steps"), progress_bar
        )
        callbacks += self.trainer_defaults.get("callbacks", [])  # e.g. the pruning callback of `dlmnist tune`
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": callbacks}
        try:  # the run folder is the Trainer's root; the config keeps the given root (the runs are under it)
            trainer = super().instantiate_trainer(**kwargs, default_root_dir=str(self.run_dir))
        except MisconfigurationException as e:  # e.g. accelerator=gpu on a machine without one
            raise trainer_error(cfg.trainer, e) from None
        if self.subcommand == "fit":  # e.g. the stacked AE's phase schedule vs max_epochs; a ValueError becomes a
            self.model.check_trainer(trainer)  # usage error in instantiate_classes, before any file is written
        return trainer

    def command_failed(self, subcommand: str) -> None:
        finish_wandb(self.trainer.loggers, exit_code=1)
        runs.release(self._made)
        _say(f"dlmnist {subcommand}: failed; run folder {self.run_dir}")

    def command_done(self, subcommand: str) -> None:
        finish_wandb(self.trainer.loggers, exit_code=0)
        if subcommand == "fit" and self.trainer.is_global_zero:
            self._save_curves()
        runs.release(self._made)  # a command that wrote nothing (fast_dev_run) leaves no empty folder
        gone = not self.run_dir.exists()
        _say(f"dlmnist {subcommand}: done; " + ("nothing written" if gone else f"run folder {self.run_dir}"))

    def _save_curves(self) -> None:
        """``figures/curves.png`` (``figures/<sub>__curves.png`` for a resumed fit) from the fit's metrics.csv."""
        sub, run = self.log_sub, self.run_dir
        name = f"{sub}__curves.png" if sub else "curves.png"
        title = f"{run.parent.name}/{run.name}" + (f"/{sub}" if sub else "")
        path = save_curves([("", runs.read_metrics(run / sub), runs.read_test(run))], run / "figures" / name, title)
        if path is not None:
            _say(f"curves: {path}")


def main(args: Any = None) -> None:
    """LightningCLI's commands (fit, validate, test, predict). The ``dlmnist`` console script is
    :func:`dlmnist.entry.main`: it answers the top-level help and the other commands without Lightning."""
    try:
        DLMNISTCLI(args=None if args is None else list(args))
    except (DataError, EncoderCheckpointError, SetupError) as e:
        print(f"dlmnist: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except NonFiniteLossError as e:
        print(f"dlmnist: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None

"""LightningCLI's parser with short errors, the help that leads with the resolved model, and the config saver."""

from __future__ import annotations

import difflib
import re
import sys
from typing import Any, Optional

import yaml
from lightning.pytorch.cli import LightningArgumentParser, SaveConfigCallback

from dlmnist.cli.errors import error_reason
from dlmnist.cli.help import reorder
from dlmnist.compat import option_names

PARSER_MODE = "omegaconf+"  # after every file and flag: ${...encoder.init_args.latent_dim} interpolations resolved


class DLMNISTParser(LightningArgumentParser):
    """LightningCLI's parser with short errors: the reason a value was refused, not a page of usage.

    jsonargparse reports a model that refused an argument as "Does not validate against any of the Union
    subtypes" followed by every subtype tried and a dump of the whole model config; this keeps the reasons.
    ``dlmnist <command> --help`` still prints the full usage, with the resolved model's arguments first.
    """

    help_model: Optional[dict[str, Any]] = None  # the resolved model section, set by the CLI before --help

    def short_usage(self) -> str:
        return f"usage: {self.prog.replace(' [options]', '')} [-h] [-c CONFIG] [--print_config] [options]\n"

    def print_usage(self, file=None) -> None:
        (file or sys.stdout).write(self.short_usage())

    def format_help(self, formatter=None) -> str:
        text = super().format_help() if formatter is None else super().format_help(formatter)
        if "\n  --trainer." not in text:  # the top-level parser
            return text
        return reorder(text, self.help_model, self.short_usage())  # the model's and data's arguments first

    def error(self, message: str, ex: Optional[Exception] = None):
        if self.exit_on_error:  # the message printed, not one raised to be nested in another
            message = error_reason(Exception(message))
            if m := re.match(r"unrecognized arguments: (--[\w.]+)", message, re.IGNORECASE):
                close = difflib.get_close_matches(m.group(1).split("=")[0], option_names(self), n=1)
                message += f" (did you mean {close[0]}?)" if close else ""
        return super().error(message, ex)


class RunConfigCallback(SaveConfigCallback):
    """Save ``config.yaml`` into the run folder and send the resolved config to every logger (e.g. W&B)."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        loggers = [logger for logger in trainer.loggers if type(logger).__name__ != "CSVLogger"]
        if not loggers:  # config.yaml is written by the base class; a dump costs about 0.15 s of CPU
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False, format="yaml"))
        for logger in loggers:
            logger.log_hyperparams(config)

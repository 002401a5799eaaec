"""The one config resolver: (config files, overrides) -> the resolved config, exactly as ``--print_config`` prints.

Every reader of configs goes through :func:`resolve`: the training commands themselves, their ``--help``, the
suite's cells, tune, report, summarize and the analysis commands. It runs the ``dlmnist`` LightningCLI's own
parser (:class:`dlmnist.cli.DLMNISTCLI`) and stops after parsing, so includes (``config: ../cnn.yaml``), dotted
keys, sub-configs given as files and ``${...}`` interpolations resolve as they do for ``dlmnist fit``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import lightning as L
from jsonargparse import ArgumentParser, Namespace

from dlmnist.cli import DLMNISTCLI, Resolved
from dlmnist.cli.errors import error_reason
from dlmnist.cli.parser import PARSER_MODE
from dlmnist.models.base import Model

Configs = Union[str, Path, Sequence[Union[str, Path]]]


class _Resolver(DLMNISTCLI):
    resolve_only = True


def _files(configs: Configs) -> list[str]:
    paths = [configs] if isinstance(configs, (str, Path)) else list(configs)
    return [x for p in paths for x in ("-c", str(p))]


def resolve(configs: Configs = (), overrides: Sequence[str] = (), command: str = "fit") -> Namespace:
    """The resolved config of ``dlmnist COMMAND -c FILE ... OVERRIDES``. Raises ValueError with the CLI's short
    reason when it does not parse."""
    parser, config = resolve_with_parser(configs, overrides, command)
    return config[command]


def resolve_with_parser(configs: Configs, overrides: Sequence[str], command: str = "fit"):
    """(the command's parser, the resolved top-level config): :func:`dump` needs the parser."""
    argv = [command, *_files(configs), *overrides]
    try:
        with warnings.catch_warnings():  # "args ... intended to run from within Python": that is what this is
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            _Resolver(args=argv, parser_kwargs={"exit_on_error": False, "parser_mode": PARSER_MODE})
    except Resolved as r:
        return r.parser, r.config
    except SystemExit as e:  # a parse error the parser printed itself
        raise ValueError(f"dlmnist {' '.join(argv)}: does not parse (exit {e.code})") from None
    except Exception as e:  # noqa: BLE001 (jsonargparse's own errors: their reason, one line)
        raise ValueError(error_reason(e)) from None
    raise AssertionError("the resolver did not stop after parsing")


def dump(configs: Configs = (), overrides: Sequence[str] = (), command: str = "fit") -> str:
    """The resolved config as YAML: what ``dlmnist COMMAND ... --print_config`` prints."""
    parser, config = resolve_with_parser(configs, overrides, command)
    return parser.dump(config[command], skip_none=False)


def model_config(configs: Configs, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved ``model`` section (``class_path``, ``init_args``) of one config file, or of several merged in
    order (later files override earlier ones). Raises ValueError when no file gives a model or they do not parse."""
    model = resolve(configs, overrides).get("model")
    if model is None or model.get("class_path") is None:
        raise ValueError(f"no model: section in {configs}")
    return model.as_dict()


def instantiate_model(model: dict[str, Any]) -> L.LightningModule:
    """A model from a resolved ``model`` section (of :func:`model_config` or a run's ``config.yaml``)."""
    parser = ArgumentParser(exit_on_error=False, parser_mode=PARSER_MODE)
    parser.add_subclass_arguments(Model, "model")
    return parser.instantiate_classes(parser.parse_object({"model": model})).model


def model_from_config(configs: Configs, overrides: Sequence[str] = ()) -> L.LightningModule:
    """The model of one config file, or of several merged in order (later files override earlier ones), with the
    command line's ``--model.*`` overrides. Raises ValueError when no file gives a model, or when the model
    refuses an argument."""
    try:
        return instantiate_model(model_config(configs, overrides))
    except ValueError as e:
        raise ValueError(error_reason(e)) from None

"""Read an experiment config's model exactly as the CLI does, without building Lightning's trainer parser.

A config file may start from another (``config: ../cnn.yaml``, relative to the file) and change single keys
(``model.init_args.encoder.init_args.channels: [8, 16]``); a sub-module may be given as a file
(``encoder: encoders/conv_ae.yaml``). These are jsonargparse's own mechanisms: the parser below resolves them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import lightning as L
from jsonargparse import ArgumentParser, Namespace

from dlmnist.models.base import Model

PARSER_MODE = "omegaconf+"  # after every file and flag: ${...encoder.init_args.latent_dim} interpolations resolved
CLI_SCALARS = ("seed_everything", "name", "runs_dir", "ckpt_path", "checkpoint_every_n_steps", "optimizer",
               "lr_scheduler")  # fmt: skip


@functools.cache
def _parser() -> ArgumentParser:
    """``-c`` files with the model resolved; the trainer and data sections are accepted, not checked."""
    parser = ArgumentParser(exit_on_error=False, parser_mode=PARSER_MODE)
    parser.add_argument("-c", "--config", action="config")
    parser.add_subclass_arguments(Model, "model", required=False)
    for key in ("data", "trainer"):
        parser.add_argument(f"--{key}", type=Optional[dict], default=None)
    for key in CLI_SCALARS:
        parser.add_argument(f"--{key}", type=Any, default="runs" if key == "runs_dir" else None)
    return parser


def _resolve(path: str | Path | Sequence[str | Path]) -> Namespace:
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    cfg = _parser().parse_args([x for p in paths for x in ("--config", str(p))])
    if cfg.get("model") is None:
        raise ValueError(f"no model: section in {', '.join(map(str, paths))}")
    return cfg


def model_config(path: str | Path | Sequence[str | Path]) -> dict[str, Any]:
    """The resolved ``model`` section (``class_path``, ``init_args``) of one config file, or of several merged in
    order (later files override earlier ones). Raises ValueError when no file gives a model or they do not parse."""
    return _resolve(path).as_dict()["model"]


def model_from_config(path: str | Path | Sequence[str | Path]) -> L.LightningModule:
    """The model of one config file, or of several merged in order (later files override earlier ones).

    Raises ValueError when no file gives a model, or when the model refuses an argument.
    """
    return _parser().instantiate_classes(_resolve(path)).model


def error_reason(error: Exception) -> str:
    """The reason out of a jsonargparse error that lists every Union subtype it tried.

    A model's own ValueError message is kept ("latent_dim must be a positive integer..."); when every subtype
    only failed its type check, one line says what was expected and what was given. Other messages pass as is.
    """
    text = str(error)
    if "Union subtypes" not in text:
        return text
    raw = text.splitlines()
    indent = lambda ln: len(ln) - len(ln.lstrip())  # noqa: E731
    keys = [m.group(1) for ln in raw if (m := re.match(r'\s*Parser key "([^"]+)"', ln))]
    key = f"{'.'.join(keys)}: " if keys else ""  # nested class_path errors: model, encoder, latent_dim
    items = [(indent(ln), ln.strip()[2:]) for ln in raw if ln.strip().startswith("- ")]
    reasons = [t for _, t in items if not t.startswith(("Expected a <class", "Problem with given class_path"))]
    if reasons:
        return key + "\n".join(dict.fromkeys(reasons))
    deepest = max((i for i, _ in items), default=0)
    expected = [re.sub(r"Expected a <class '(?:[\w.]+\.)?(\w+)'>", r"\1", t) for i, t in items if i == deepest]
    givens = [(indent(ln), ln.strip().removeprefix("Given value:").strip()) for ln in raw if "Given value:" in ln]
    given = max(givens, key=lambda g: g[0])[1] if givens else "?"
    return f"{key}expected {' or '.join(expected)}, got {given!r}"

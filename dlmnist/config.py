"""Build the model of an experiment config exactly as the CLI does (``model: class_path/init_args``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import yaml
from jsonargparse import ArgumentParser


def model_from_config(path: str | Path | Sequence[str | Path]) -> L.LightningModule:
    """The ``model:`` of one config file, or of several merged in order (later files override earlier ones).

    Raises ValueError when no file has a ``model:`` section, or when the model refuses an argument.
    """
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningModule, "model")
    cfg = None
    for p in paths:
        model = (yaml.safe_load(p.read_text()) or {}).get("model")
        if model is not None:
            cfg = parser.parse_object({"model": model}, cfg_base=cfg)
    if cfg is None:
        raise ValueError(f"no model: section in {', '.join(map(str, paths))}")
    return parser.instantiate_classes(cfg).model


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

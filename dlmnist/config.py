"""Build the model of an experiment config exactly as the CLI does (``model: class_path/init_args``)."""

from __future__ import annotations

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
    """The model's own message out of a jsonargparse instantiation error (which lists every Union subtype tried)."""
    lines = str(error).splitlines()
    reasons = [ln.strip()[2:] for ln in lines if ln.startswith("  - ") and "Expected a <class" not in ln]
    return "\n".join(reasons) if reasons else str(error)

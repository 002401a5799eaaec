"""Build the model of an experiment config exactly as the CLI does (class_path/init_args)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import yaml
from jsonargparse import ArgumentParser


def model_from_config(path: str | Path) -> L.LightningModule:
    """The ``model:`` section of a dlmnist YAML config, instantiated (random weights)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningModule, "model")
    cfg = parser.parse_object({"model": yaml.safe_load(Path(path).read_text())["model"]})
    return parser.instantiate_classes(cfg).model

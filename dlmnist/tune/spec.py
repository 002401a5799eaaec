"""A search spec (``configs/search/*.yaml``): the experiment config, fixed arguments, the searched ranges.

    config: configs/cnn.yaml          # or a list of -c files
    trials: 20                        # total, over every session and machine sharing the study
    epochs: 3                         # --trainer.max_epochs; or a range {low: 2, high: 6} to search it
    args: {data.batch_size: 256}      # fixed for every trial
    params:                           # searched; each {choices: [...]} or {low, high[, step][, log]}
      model.encoder.init_args.channels: {choices: [[16, 32], [32, 64]]}
      model.optim.lr: {low: 0.001, high: 0.01, log: true}
    pruner: {n_startup_trials: 3, n_warmup_steps: 1}   # Optuna MedianPruner on the per-epoch validation metric
    sampler_seed: 0

The metric is the one the model's best checkpoint is chosen by (``monitor``, a validation metric),
so selection never sees the test set.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlmnist import recipes
from dlmnist.suite.graph import as_args
from dlmnist.utils.checks import PositiveInt, check

KEYS = {"config", "trials", "epochs", "args", "params", "pruner", "sampler_seed"}


@dataclass
class SearchSpec:
    name: str
    config: list[str]
    trials: int
    args: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    pruner: dict[str, Any] | None = field(default_factory=dict)  # MedianPruner kwargs; None: no pruning
    sampler_seed: int = 0

    def suggest(self, trial) -> dict[str, Any]:
        """Ask the trial for a value of every searched argument; list choices travel as JSON strings."""
        values = {}
        for key, p in self.params.items():
            if "choices" in p:
                choices = [json.dumps(c) for c in p["choices"]] if _structured(p) else p["choices"]
                value = trial.suggest_categorical(key, choices)
                values[key] = self.decode({key: value})[key]
            elif all(isinstance(p[k], int) for k in ("low", "high")) and isinstance(p.get("step", 1), int):
                values[key] = trial.suggest_int(
                    key, p["low"], p["high"], step=p.get("step", 1), log=p.get("log", False)
                )
            else:
                values[key] = trial.suggest_float(key, p["low"], p["high"], step=p.get("step"), log=p.get("log", False))
        return values

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        """Trial params as the CLI gets them: list/dict choices back from their JSON strings."""
        out = {}
        for key, value in params.items():
            out[key] = json.loads(value) if _structured(self.params.get(key, {})) else value
        return out

    def cli_args(self, values: dict[str, Any]) -> list[str]:
        return [x for c in self.config for x in ("-c", c)] + as_args({**self.args, **values})

    def monitor(self) -> tuple[str, str]:
        """``(metric, "max"|"min")``: the ``monitor`` of the config's model class (what best.ckpt is chosen by)."""
        from dlmnist.config import model_config  # the configs as the CLI resolves them (includes, dotted keys)

        module, cls = model_config(self.config, as_args(self.args))["class_path"].rsplit(".", 1)
        return getattr(importlib.import_module(module), cls).monitor  # declared by dlmnist.models.Model


def _structured(param: dict[str, Any]) -> bool:
    """Optuna stores only scalar choices: lists and dicts among them travel as JSON strings."""
    return any(isinstance(c, (list, dict)) for c in param.get("choices", []))


def load_spec(path: str | Path) -> SearchSpec:
    if not recipes.exists(path):
        raise ValueError(recipes.unknown(str(path)))
    path = Path(recipes.path(path))  # a file, else a packaged spec (search/cnn)
    raw = yaml.safe_load(path.read_text()) or {}
    bad = set(raw) - KEYS
    if bad:
        raise ValueError(f"{path}: unknown keys {sorted(bad)} (allowed: {sorted(KEYS)})")
    if "config" not in raw:
        raise ValueError(f"{path}: `config` (the experiment's YAML) is required")
    config = raw["config"] if isinstance(raw["config"], list) else [raw["config"]]
    for c in config:
        if not recipes.exists(c):
            raise ValueError(f"{path}: {recipes.unknown(c)}")
    trials = raw.get("trials", 20)
    check(PositiveInt, **{f"{path}: trials": trials})
    trials = int(trials)
    args, params = dict(raw.get("args") or {}), dict(raw.get("params") or {})
    epochs = raw.get("epochs")
    if isinstance(epochs, dict):
        params["trainer.max_epochs"] = epochs
    elif epochs is not None:
        args["trainer.max_epochs"] = epochs
    for key, p in params.items():
        if not isinstance(p, dict) or ("choices" in p) == ("low" in p and "high" in p):
            raise ValueError(f"{path}: params.{key} needs either `choices` or `low` and `high`, got {p!r}")
        for bound in ("low", "high", "step"):
            if isinstance(p.get(bound), str):  # YAML reads 1e-3 as a string
                p[bound] = float(p[bound])
    pruner = None if raw.get("pruner") is False else raw.get("pruner") or {}
    return SearchSpec(path.stem, config, trials, args, params, pruner, raw.get("sampler_seed", 0))

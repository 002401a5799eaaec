"""The optional extras (pyproject's ``[project.optional-dependencies]``): which command needs which, in one line.

The core install trains, tests and predicts; W&B logging, tune, the cluster launchers, export and the notebook
need an extra each. Their packages are imported where they are used, never at import time of the package; a
missing one ends the command with one line that names the extra (:func:`missing`). A leaf module.
"""

from __future__ import annotations

import importlib.util

# top-level module -> the extra that installs it
EXTRA_OF = {
    "wandb": "wandb",
    "optuna": "tune",
    "optuna_integration": "tune",
    "submitit": "cluster",
    "onnx": "export",
    "onnxruntime": "export",
    "onnxscript": "export",
    "nbclient": "notebook",
    "nbformat": "notebook",
    "ipykernel": "notebook",
    "matplotlib_inline": "notebook",
}


def message(module: str, what: str) -> str:
    extra = EXTRA_OF[module]
    return f"{what} needs the [{extra}] extra: pip install 'dlmnist[{extra}]'"


def missing(error: ModuleNotFoundError, what: str) -> str | None:
    """The one line for an optional package that is not installed, or None when ``error`` is about another."""
    module = (error.name or "").split(".")[0]
    return message(module, what) if module in EXTRA_OF else None


def require(module: str, what: str) -> None:
    """Raise ModuleNotFoundError (which :func:`missing` turns into one line) when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(message(module, what), name=module)

"""Modules that remember how they were built, so that a model holding them can be rebuilt from its checkpoint.

A class that mixes in :class:`RemembersInit` records the arguments of each instance's constructor as a
jsonargparse-style ``{"class_path": ..., "init_args": {...}}`` dict (:func:`init_config`), the form LightningCLI
writes into a checkpoint for a sub-module given in a config. ``dlmnist.models.base.Model`` saves that dict for a
sub-module built in Python, so ``load_from_checkpoint(path)`` rebuilds the model either way.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Optional


class RemembersInit:
    """Mixin for ``nn.Module`` classes: every instance records the arguments it was constructed with."""

    def __new__(cls, *args: Any, **kwargs: Any):
        self = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:  # copy/pickle call __new__ without arguments; they restore the record with the state
            return self
        bound.apply_defaults()
        try:
            init_args = {k: plain(v) for k, v in list(bound.arguments.items())[1:]}
        except TypeError:  # an argument that cannot be written down: the instance records nothing
            return self
        object.__setattr__(self, "_init_config", {"class_path": f"{cls.__module__}.{cls.__qualname__}",
                                                  "init_args": init_args})
        return self


def init_config(module: Any) -> Optional[dict]:
    """``{"class_path": ..., "init_args": {...}}`` of a :class:`RemembersInit` instance; ``None`` for any other."""
    return module.__dict__.get("_init_config") if hasattr(module, "__dict__") else None


def plain(value: Any) -> Any:
    """A constructor argument as YAML-friendly data: sub-modules as their config, dataclasses and tuples as dicts
    and lists; a sub-module that does not record its arguments is a ``TypeError`` naming it."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    config = init_config(value)
    if config is None:
        raise TypeError(f"cannot record an argument of type {type(value).__name__}")
    return config

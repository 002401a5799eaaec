"""Saving hyper-parameters of modules that receive other modules (an encoder, a decoder)."""

from __future__ import annotations

import inspect

import lightning as L
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters


def save_hparams(module: L.LightningModule, submodules: tuple[str, ...] = ("encoder",)) -> None:
    """``save_hyperparameters`` that keeps sub-modules reloadable.

    Built by the CLI, the sub-modules' ``class_path``/``init_args`` are saved, so that
    ``load_from_checkpoint(path)`` rebuilds them. Built in Python, they are left out of
    the hyper-parameters (their weights are in the state dict): pass them again to
    ``load_from_checkpoint(path, encoder=...)``.
    """
    ignore = [] if _given_hyperparameters.get() is not None else list(submodules)
    module.save_hyperparameters(ignore=ignore, frame=inspect.currentframe().f_back)

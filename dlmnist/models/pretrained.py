"""Starting a model's encoder from another run's checkpoint, optionally frozen: one mechanism for every model.

A model that has ``self.encoder`` mixes in :class:`PretrainedEncoder` and calls
``self.init_encoder(encoder_checkpoint, freeze_encoder)`` at the end of ``__init__``:

- ``encoder_checkpoint``: path to any dlmnist checkpoint whose state dict holds ``encoder.*`` weights
  (classifier, autoencoder, stacked AE, VAE). A glob such as ``runs/ae_conv/version_*/checkpoints/best.ckpt``
  (in a config ``${...runs_dir}/ae_conv/version_*/checkpoints/best.ckpt``, which follows ``--runs_dir``)
  picks the newest matching run. The weights are copied when ``fit`` starts (``setup("fit")``), so that
  ``test``/``predict`` from the model's own checkpoint never need the file, and a resumed ``fit`` ends up
  with the resumed weights. A missing file or an encoder that does not match the configured
  architecture is an :class:`EncoderCheckpointError` naming the path, or the layer and both shapes.
- ``freeze_encoder``: no gradients (``requires_grad=False``, so the optimizer never receives the
  parameters) and eval mode for the whole run (batch-norm statistics and dropout do not move),
  whatever ``model.train()`` Lightning calls.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
from lightning.pytorch.utilities import rank_zero_info


class EncoderCheckpointError(ValueError):
    """The encoder checkpoint is missing or does not fit the configured encoder."""


def resolve_checkpoint(path: str, what: str = "encoder_checkpoint") -> Path:
    """The file ``path`` names; a glob pattern resolves to the match with the highest version number. ``what``:
    the argument's name, for the error."""
    if glob.has_magic(path):
        matches = glob.glob(path)
        if not matches:
            raise EncoderCheckpointError(f"{what} {path}: no file matches (train that run first)")
        key = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p)]  # noqa: E731 version_10 > 9
        return Path(max(matches, key=key))
    if not Path(path).is_file():
        raise EncoderCheckpointError(f"{what} {path}: no such file")
    return Path(path)


def encoder_state(path: str, prefix: str = "encoder.") -> dict[str, torch.Tensor]:
    """The ``encoder.*`` entries of a checkpoint's state dict, with the prefix removed."""
    file = resolve_checkpoint(path)
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated file, not a checkpoint at all, ...
        raise EncoderCheckpointError(f"encoder_checkpoint {file}: cannot be read as a checkpoint ({e})") from e
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    found = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not found:
        raise EncoderCheckpointError(f"encoder_checkpoint {file}: its state dict has no {prefix}* weights")
    return found


def load_encoder(encoder: nn.Module, path: str) -> Path:
    """Copy the checkpoint's encoder weights into ``encoder``; any difference in layers or shapes is an error."""
    state = encoder_state(path)
    own = encoder.state_dict()
    file = resolve_checkpoint(path)
    for name, tensor in own.items():
        if name not in state:
            raise EncoderCheckpointError(f"encoder_checkpoint {file}: encoder.{name} is missing from the checkpoint")
        if tensor.shape != state[name].shape:
            raise EncoderCheckpointError(
                f"encoder_checkpoint {file}: encoder.{name} has shape {tuple(state[name].shape)} in the checkpoint "
                f"but {tuple(tensor.shape)} in the configured encoder"
            )
    extra = sorted(set(state) - set(own))
    if extra:
        raise EncoderCheckpointError(
            f"encoder_checkpoint {file}: encoder.{extra[0]} is in the checkpoint but not in the configured encoder"
        )
    encoder.load_state_dict(state)
    return file


class PretrainedEncoder:
    """Mixin for LightningModules with ``self.encoder``: ``encoder_checkpoint`` and ``freeze_encoder``."""

    encoder: nn.Module

    def init_encoder(self, encoder_checkpoint: Optional[str] = None, freeze_encoder: bool = False) -> None:
        self.encoder_checkpoint, self.freeze_encoder = encoder_checkpoint, freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def check_trainer(self, trainer) -> None:
        """Refuse a fit whose encoder checkpoint is missing or does not fit, before the run folder is made."""
        if self.encoder_checkpoint is not None:
            load_encoder(self.encoder, self.encoder_checkpoint)  # loaded again when fit starts (setup)
        super().check_trainer(trainer)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.encoder_checkpoint is not None:
            file = load_encoder(self.encoder, self.encoder_checkpoint)
            frozen = "frozen" if self.freeze_encoder else "fine-tuned"
            rank_zero_info(f"encoder weights loaded from {file} ({frozen})")
        super().setup(stage)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "freeze_encoder", False):
            self.encoder.eval()  # frozen: batch norm statistics and dropout stay as they are
        return self

"""Speed settings that leave the model code alone."""

from __future__ import annotations

import lightning as L
import torch


class ChannelsLast(L.Callback):
    """Keep the model's conv weights (and so its activations) in channels-last memory format.

    oneDNN's CPU convolutions and cuDNN's tensor-core paths are faster in NHWC. MNIST inputs have
    one channel, for which NCHW and NHWC are the same memory layout, so the batches need no copy.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)

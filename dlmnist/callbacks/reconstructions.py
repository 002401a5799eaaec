"""Pictures of what a generative model makes of real digits, logged wherever the run is logged."""

from __future__ import annotations

import lightning as L
import torch

from dlmnist.utils.checks import PositiveInt, check
from dlmnist.utils.figures import log_figure, panels_figure


class ReconstructionGrid(L.Callback):
    """After each validation epoch and after ``test``, log ``<stage>/reconstructions``: the first
    ``num_images`` images of the first batch and what the model makes of them.

    The model provides ``reconstruction_panels(x) -> [(title, (N, 1, H, W) images in [0, 1]), ...]``
    (input, noisy input, reconstruction for an autoencoder); a model whose ``reconstruction_panels`` gives
    ``None`` (the base's default: it does not reconstruct) gets no figure. ``dlmnist fit``/``validate``/``test``
    add this callback for a model that overrides ``reconstruction_panels``. The figure goes through
    ``log_figure``: a PNG in ``<run>/figures/`` and W&B / TensorBoard images when those loggers are on.
    """

    def __init__(self, num_images: PositiveInt = 16, ncols: PositiveInt = 16) -> None:
        check(PositiveInt, num_images=num_images, ncols=ncols)
        self.num_images, self.ncols = num_images, ncols
        self._x: torch.Tensor | None = None

    def _keep(self, batch, batch_idx: int) -> None:
        if batch_idx == 0 and self._x is None:
            self._x = batch[0][: self.num_images]

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule, key: str) -> None:
        x, self._x = self._x, None
        if x is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        with torch.no_grad():
            panels = pl_module.reconstruction_panels(x)
        if panels is None:
            return
        log_figure(trainer, key, panels_figure(panels, ncols=self.ncols, side_by_side=False))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._keep(batch, batch_idx)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._log(trainer, pl_module, "val/reconstructions")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._keep(batch, batch_idx)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._log(trainer, pl_module, "test/reconstructions")

"""Latent-space numbers and a PCA scatter of the test codes, logged at the end of ``test``."""

from __future__ import annotations

import lightning as L
import torch

from dlmnist.utils.figures import log_figure


class LatentSpace(L.Callback):
    """Collect ``pl_module.codes(x)`` (the encoder's output; a VAE's posterior mean of z) over the test set; then
    log ``test/latent_<metric>`` (spread, separation, ratio, silhouette, probe accuracies:
    ``dlmnist.utils.latent_metrics``) and the figure ``test/latent_pca`` (and ``test/latent_tsne`` with
    ``tsne: true`` and scikit-learn). Opt-in, in a config:
    ``trainer: {callbacks: [{class_path: dlmnist.callbacks.LatentSpace}]}``."""

    def __init__(self, tsne: bool = False) -> None:
        self.tsne = tsne
        self._codes: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._codes, self._labels = [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        with torch.no_grad():
            self._codes.append(pl_module.codes(x).float().cpu())  # (B, D): the encoder's output, a VAE's mean of z
        self._labels.append(y.cpu())

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        from dlmnist.utils.latent_metrics import latent_metrics, pca_2d, scatter_figure, tsne_2d

        if not self._codes:
            return
        codes, labels = torch.cat(self._codes), torch.cat(self._labels)
        self._codes, self._labels = [], []
        metrics = latent_metrics(codes, labels)
        for key, value in metrics.items():
            if key not in ("num_codes", "latent_dim", "spread_per_class"):
                pl_module.log(f"test/latent_{key}", float(value), sync_dist=False)
        if trainer.is_global_zero:
            log_figure(trainer, "test/latent_pca", scatter_figure(pca_2d(codes), labels, "test codes, PCA"))
            points = tsne_2d(codes[:3000]) if self.tsne else None
            if points is not None:
                log_figure(trainer, "test/latent_tsne", scatter_figure(points, labels[:3000], "test codes, t-SNE"))

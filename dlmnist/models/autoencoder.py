"""AutoEncoder: an encoder and a decoder trained to reconstruct the (clean) image; denoising and anomaly scores."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.classification import BinaryAUROC

from dlmnist.compat import attached_trainer
from dlmnist.losses import encode_with_jacobian_norm
from dlmnist.models.base import Model, Stage
from dlmnist.models.optim import Optim
from dlmnist.models.pretrained import PretrainedEncoder
from dlmnist.utils.checks import NonNegativeFloat, PositiveInt, check
from dlmnist.utils.figures import figure_png, log_figure, panels_figure
from dlmnist.utils.files import atomic_write_bytes
from dlmnist.utils.latent_figures import image_grid_figure

LossName = Literal["l1", "mse", "bce"]


def reconstruction_error(recon: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-image mean error ``(B,)``: ``l1`` (mean absolute error), ``mse`` or ``bce`` (pixels in [0, 1])."""
    if loss == "l1":
        err = (recon - target).abs()
    elif loss == "mse":
        err = (recon - target).square()
    else:  # BCE is not autocast-safe: compute it in float32
        with torch.autocast(device_type=recon.device.type, enabled=False):
            err = F.binary_cross_entropy(recon.float().clamp(0, 1), target.float(), reduction="none")
    return err.flatten(1).mean(dim=1)


class AutoEncoder(PretrainedEncoder, Model):
    """``decoder(encoder(x + noise))`` trained to give back ``x``; pixels in [0, 1] (``data.normalize: false``).

    Args:
        encoder: image ``(B, 1, 28, 28)`` -> code ``(B, latent_dim)``, e.g. ``dlmnist.nn.ConvEncoder``.
        decoder: code -> image in [0, 1], e.g. ``dlmnist.nn.ConvDecoder``.
        loss: ``l1`` (mean absolute error), ``mse`` or ``bce``; ``test/l1`` and ``test/mse`` are logged whatever it is.
        noise_factor: standard deviation of the Gaussian noise added to the input (clipped to [0, 1]);
            the loss is against the clean image. 0 for a plain autoencoder.
        optim: optimizer and schedule (:class:`~dlmnist.models.optim.Optim`).
        encoder_checkpoint: start the encoder from this checkpoint's ``encoder.*`` weights (``pretrained``).
        freeze_encoder: keep the encoder fixed (no gradients, eval mode): only the decoder learns.
        sparsity_weight: sparse autoencoder: add ``sparsity_weight`` x the mean absolute code value (an L1
            activity penalty) to the loss; with a ReLU code it drives code units to exactly 0 (``code_zero``).
        contractive_weight: contractive autoencoder: add ``contractive_weight`` x ||d code / d input||_F^2 per
            image, estimated with ``contractive_projections`` random vector-Jacobian products
            (:func:`dlmnist.losses.encode_with_jacobian_norm`, ``torch.func.vjp``).
        contractive_projections: random projections per batch for that estimate.

    Every stage logs ``recon`` (the reconstruction loss alone), ``code_l1`` and ``code_zero`` (the share of code
    entries that are exactly 0), and ``contractive`` when that penalty is on, so that plain, denoising, sparse and
    contractive autoencoders compare on the same numbers.

    When the data module holds digits out of training (``data.exclude_classes``), ``test`` also reports
    ``test/auroc``: how well the per-image reconstruction error tells the held-out digits from the rest.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        loss: LossName = "l1",
        noise_factor: NonNegativeFloat = 0.0,
        optim: Optim = Optim(),
        encoder_checkpoint: Optional[str] = None,
        freeze_encoder: bool = False,
        sparsity_weight: NonNegativeFloat = 0.0,
        contractive_weight: NonNegativeFloat = 0.0,
        contractive_projections: PositiveInt = 1,
    ) -> None:
        super().__init__(optim=optim)
        check(LossName, loss=loss)
        check(NonNegativeFloat, noise_factor=noise_factor, sparsity_weight=sparsity_weight,
              contractive_weight=contractive_weight)
        check(PositiveInt, contractive_projections=contractive_projections)
        enc_dim, dec_dim = getattr(encoder, "latent_dim", None), getattr(decoder, "latent_dim", None)
        if enc_dim is not None and dec_dim is not None and enc_dim != dec_dim:
            raise ValueError(f"decoder latent_dim {dec_dim} differs from the encoder's latent_dim {enc_dim}")
        self.save_hparams(("encoder", "decoder"))
        self.encoder, self.decoder = encoder, decoder
        self.auroc = BinaryAUROC()
        self.init_encoder(encoder_checkpoint, freeze_encoder)
        self._test_codes: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, 1, 28, 28) -> (B, latent_dim) -> (B, 1, 28, 28)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, latent_dim) -> (B, 1, 28, 28)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The input the model sees: ``x`` plus Gaussian noise, clipped to [0, 1] (``x`` itself without noise)."""
        if not self.hparams.noise_factor:
            return x
        return (x + self.hparams.noise_factor * torch.randn_like(x)).clamp_(0.0, 1.0)

    def encode(self, x: torch.Tensor, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        """``(code, penalty)``: the code of ``x`` and the sparse / contractive penalties (0 when both are off)."""
        h = self.hparams
        if h.get("contractive_weight"):
            code, jac = encode_with_jacobian_norm(self.encoder, x, h.contractive_projections)
            self.log_stage(stage, "contractive", jac, batch_size=len(x))
            penalty = h.contractive_weight * jac
        else:
            code, penalty = self.encoder(x), x.new_zeros(())
        code_l1 = code.abs().mean()
        self.log_stage(stage, "code_l1", code_l1, batch_size=len(x))
        self.log_stage(stage, "code_zero", (code == 0).float().mean(), batch_size=len(x))
        return code, penalty + h.get("sparsity_weight", 0.0) * code_l1

    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        x, y = batch
        code, penalty = self.encode(self.corrupt(x), stage)
        recon = self.decoder(code)
        per_image = reconstruction_error(recon, x, self.hparams.loss)  # (B,)
        loss = per_image.mean() + penalty
        self.log_stage(stage, "loss", loss, prog_bar=True, batch_size=len(x))
        self.log_stage(stage, "recon", per_image.mean(), batch_size=len(x))
        if stage == "test":
            if batch_idx == 0:
                self._test_codes = code.detach()
            self.log_stage(stage, "l1", F.l1_loss(recon, x), batch_size=len(x))
            self.log_stage(stage, "mse", F.mse_loss(recon, x), batch_size=len(x))
            held_out = self._held_out_classes()
            if held_out:
                is_anomaly = torch.isin(y, torch.tensor(held_out, device=y.device)).long()
                self.auroc.update(per_image, is_anomaly)
                self.log("test/auroc", self.auroc, on_epoch=True, batch_size=len(x))  # torchmetrics syncs it
        return loss

    @torch.no_grad()
    def on_test_epoch_end(self) -> None:
        """``test/random_codes``: codes drawn from a Gaussian with the per-unit mean and spread of the first test
        batch's codes, decoded; beside a VAE's ``test/prior_samples`` it shows what an AE's decoder makes of codes
        that no image gave."""
        codes, self._test_codes = self._test_codes, None
        if codes is None or len(codes) < 2 or not self.trainer.is_global_zero:
            return
        flat = codes.flatten(1)
        g = torch.Generator().manual_seed(0)
        z = flat.mean(0) + flat.std(0) * torch.randn(64, flat.shape[1], generator=g).to(flat.device)
        images = self.decoder(z.view(64, *codes.shape[1:])).clamp(0.0, 1.0).cpu()
        title = "decoded random codes, per unit N(mean, std) of the test codes"
        log_figure(self.trainer, "test/random_codes", image_grid_figure(images, 8, title))

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y = batch
        noisy = self.corrupt(x)
        return {"input": x, "noisy": noisy, "reconstruction": self(noisy), "label": y}

    def reconstruction_panels(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Titled image batches for pictures: input (noisy input) and reconstruction."""
        noisy = self.corrupt(x)
        panels = [("input", x)] + ([("noisy input", noisy)] if self.hparams.noise_factor else [])
        return panels + [("reconstruction", self(noisy))]

    def _held_out_classes(self) -> list[int]:
        trainer = attached_trainer(self)
        datamodule = trainer.datamodule if trainer is not None else None
        return list(getattr(datamodule, "exclude_classes", None) or [])

    def write_predictions(self, outputs: list[dict[str, torch.Tensor]], folder: Path) -> Path:
        """``reconstructions.pt`` (inputs, noisy inputs, reconstructions, labels) and a PNG of the first 64."""
        data = {k: torch.cat([o[k] for o in outputs]).cpu() for k in outputs[0]}
        buf = io.BytesIO()
        torch.save(data, buf)
        path = atomic_write_bytes(folder / "reconstructions.pt", buf.getvalue())
        panels = [(k, data[k][:64]) for k in ("input", "noisy", "reconstruction")]
        if torch.equal(data["input"], data["noisy"]):
            panels.pop(1)
        atomic_write_bytes(folder / "reconstructions.png", figure_png(panels_figure(panels, ncols=8)))
        return path

"""ConvDecoder: latent vector -> image through transposed convolutions, shared by the autoencoders and the VAE."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from dlmnist.nn.layers import Activation, make_activation
from dlmnist.utils.checks import PositiveInt, check
from dlmnist.utils.init_config import RemembersInit


class ConvDecoder(RemembersInit, nn.Module):
    """``(B, latent_dim)`` -> image ``(B, out_channels, output_size, output_size)``, mirroring a ConvEncoder.

    A fully connected layer maps the latent vector to a ``channels[0] x feature_size x feature_size``
    map; each entry of ``channels`` is then a stride-2 transposed convolution (kernel 4, padding 1)
    that doubles the size, with batch norm and the activation; a final 3x3 convolution gives
    ``out_channels`` and ``out_activation`` (``sigmoid`` for pixels in [0, 1], ``None`` for logits).

    Args:
        latent_dim: size of the input vector.
        channels: channels of the feature maps, coarsest first, e.g. ``[64, 32]`` for 7 -> 14 -> 28.
        feature_size: size of the coarsest map; ``feature_size * 2**len(channels)`` must equal ``output_size``.
        out_channels: channels of the output image.
        output_size: height = width of the output image.
        batch_norm: batch norm after each transposed convolution.
        activation: non-linearity between layers.
        out_activation: applied to the output (``None`` for none).
        latent_fc: map the latent vector to the first feature map with a fully connected layer; ``false``
            reshapes it as it is (``latent_dim`` must then be ``channels[0] * feature_size**2``): a fully
            convolutional autoencoder when the encoder keeps its feature map (``ConvEncoder(latent_dim=null)``).
    """

    def __init__(
        self,
        latent_dim: PositiveInt = 12,
        channels: list[PositiveInt] = [64, 32],
        feature_size: int = 7,
        out_channels: int = 1,
        output_size: int = 28,
        batch_norm: bool = True,
        activation: Activation = "relu",
        out_activation: Optional[Activation] = "sigmoid",
        latent_fc: bool = True,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must be a non-empty list")
        check(PositiveInt, latent_dim=latent_dim, channels=channels)
        if not latent_fc and channels and latent_dim != channels[0] * feature_size**2:
            raise ValueError(
                f"latent_fc=false reshapes the code to {channels[0]}x{feature_size}x{feature_size}: latent_dim must be "
                f"{channels[0] * feature_size**2}, got {latent_dim}"
            )
        if feature_size * 2 ** len(channels) != output_size:
            raise ValueError(
                f"feature_size {feature_size} doubled by {len(channels)} layers gives "
                f"{feature_size * 2 ** len(channels)}, not output_size {output_size}"
            )
        self.latent_dim, self.feature_size = latent_dim, feature_size
        fc = [nn.Linear(latent_dim, channels[0] * feature_size**2), make_activation(activation)] if latent_fc else []
        self.from_latent = nn.Sequential(*fc)
        layers: list[nn.Module] = []
        widths = [channels[0], *channels]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(make_activation(activation))
        layers.append(nn.Conv2d(channels[-1], out_channels, 3, padding=1))
        if out_activation:
            layers.append(make_activation(out_activation))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(z.shape[0], -1, self.feature_size, self.feature_size)  # (B, C, f, f)
        return self.layers(h)  # (B, out_channels, output_size, output_size)

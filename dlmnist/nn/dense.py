"""DenseEncoder and DenseDecoder: image <-> latent vector through fully connected layers (autoencoders, the VAE)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from dlmnist.nn.layers import MLP, Activation, DropoutPosition
from dlmnist.utils.checks import PositiveInt, check
from dlmnist.utils.init_config import RemembersInit


class DenseEncoder(RemembersInit, nn.Module):
    """Image ``(B, C, H, W)`` -> ``(B, latent_dim)`` through fully connected layers (784 -> hidden... -> latent).

    ``hidden`` sets the depth (one Linear + activation per entry), ``activation`` the non-linearity, and
    ``dropout``, ``dropout_position`` and ``init_scale`` are :class:`~dlmnist.nn.layers.MLP`'s.
    """

    def __init__(
        self,
        latent_dim: PositiveInt = 64,
        hidden: list[PositiveInt] = [],
        activation: Activation = "relu",
        latent_activation: Optional[Activation] = "relu",
        dropout: float = 0.0,
        input_shape: tuple[int, int, int] = (1, 28, 28),
        dropout_position: DropoutPosition = "after",
        init_scale: Optional[float] = None,
    ) -> None:
        super().__init__()
        check(PositiveInt, latent_dim=latent_dim)
        c, h, w = input_shape
        mlp = MLP(c * h * w, hidden, latent_dim, activation, dropout, latent_activation, dropout_position, init_scale)
        self.net = nn.Sequential(nn.Flatten(), mlp)
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C, H, W) -> (B, latent_dim)


class DenseDecoder(RemembersInit, nn.Module):
    """``(B, latent_dim)`` -> image ``(B, C, H, W)`` through fully connected layers (latent -> hidden... -> 784)."""

    def __init__(
        self,
        latent_dim: PositiveInt = 64,
        hidden: list[PositiveInt] = [],
        activation: Activation = "relu",
        out_activation: Optional[Activation] = "sigmoid",
        output_shape: tuple[int, int, int] = (1, 28, 28),
    ) -> None:
        super().__init__()
        check(PositiveInt, latent_dim=latent_dim)
        c, h, w = output_shape
        self.net = MLP(latent_dim, hidden, c * h * w, activation, out_activation=out_activation)
        self.latent_dim, self.output_shape = latent_dim, tuple(output_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)  # (B, latent_dim) -> (B, C, H, W)

"""DenseStack: the fully connected encoder of a stacked autoencoder, with access to each layer."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlmnist.nn.layers import Activation, make_activation
from dlmnist.utils.checks import Fraction, PositiveInt, check
from dlmnist.utils.init_config import RemembersInit


class DenseStack(RemembersInit, nn.Module):
    """Image ``(B, C, H, W)`` (or ``(B, in_features)``) -> ``(B, latent_dim)`` through ``len(hidden)`` dense layers.

    Layer ``k`` is ``Linear(widths[k-1], widths[k])`` followed by the activation, with
    ``widths = [in_features, *hidden]``; ``latent_dim = hidden[-1]``. Unlike ``DenseEncoder``, each layer
    is reachable on its own (``layers[k - 1]``) and ``forward(x, depth=k)`` stops after layer ``k``, which
    is what greedy layer-wise pretraining needs.

    Args:
        hidden: output width of each layer, e.g. ``[500, 250, 100]`` for 784-500-250-100.
        activation: non-linearity after every layer (the code of the last layer included).
        dropout: dropout on each layer's output while training (used when the whole stack is trained).
        in_features: size of the flattened input (784 for 28x28 digits).
    """

    def __init__(
        self,
        hidden: list[PositiveInt] = [500, 250, 100],
        activation: Activation = "relu",
        dropout: Fraction = 0.0,
        in_features: PositiveInt = 784,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("hidden must be a non-empty list")
        check(PositiveInt, hidden=hidden, in_features=in_features)
        check(Fraction, dropout=dropout)
        self.widths = [in_features, *hidden]
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), make_activation(activation)) for a, b in zip(self.widths[:-1], hidden)
        )
        self.latent_dim, self.dropout, self.activation = hidden[-1], dropout, activation

    def forward(self, x: torch.Tensor, depth: Optional[int] = None, dropout: Optional[bool] = None) -> torch.Tensor:
        """The code after layer ``depth`` (default: the last); ``dropout`` defaults to ``self.training``."""
        p = self.dropout if (self.training if dropout is None else dropout) else 0.0
        h = x.flatten(1)  # (B, in_features)
        for layer in self.layers[:depth]:
            h = layer(h)  # (B, widths[k])
            if p:
                h = F.dropout(h, p, training=True)
        return h

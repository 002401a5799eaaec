"""Small shared pieces: activations by name, an MLP, per-layer argument lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeVar

import torch.nn as nn

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu", "silu"]
_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}
T = TypeVar("T")


def make_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


def per_layer(value: T | Sequence[T], n: int, name: str) -> list[T]:
    """Broadcast one value to ``n`` layers, or check that a list has one entry per layer."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries but there are {n} layers")
        return list(value)
    return [value] * n


def check_dropout(p: float, name: str = "dropout") -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {p}")


class MLP(nn.Sequential):
    """Linear layers ``in_features -> hidden... -> out_features`` with activation and dropout between."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (),
        out_features: int = 10,
        activation: Activation = "relu",
        dropout: float = 0.0,
        out_activation: Optional[Activation] = None,
    ) -> None:
        check_dropout(dropout)
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            if h < 1:
                raise ValueError(f"MLP hidden sizes must be positive, got {list(hidden)}")
            layers += [nn.Linear(width, h), make_activation(activation)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        if out_activation:
            layers.append(make_activation(out_activation))
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features

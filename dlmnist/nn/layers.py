"""Small shared pieces: activations by name, an MLP, per-layer argument lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeVar

import torch.nn as nn

from dlmnist.utils.checks import Fraction, PositiveFloat, PositiveInt, check

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu", "silu"]
_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),  # DCGAN's slope; torch's default 0.01 starves a GAN's generator
    "silu": nn.SiLU,
}
DropoutPosition = Literal["after", "before"]
T = TypeVar("T")


def make_activation(name: str) -> nn.Module:
    check(Activation, activation=name)
    return _ACTIVATIONS[name]()


def per_layer(value: T | Sequence[T], n: int, name: str) -> list[T]:
    """Broadcast one value to ``n`` layers, or check that a list has one entry per layer."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries but there are {n} layers")
        return list(value)
    return [value] * n


class MLP(nn.Sequential):
    """Linear layers ``in_features -> hidden... -> out_features`` with activation and dropout between.

    Args:
        dropout: dropout probability between hidden layers (inverted dropout: kept values scaled by 1 / (1 - p)).
        dropout_position: ``after`` (the usual place: Linear -> activation -> Dropout) or ``before`` the activation
            (Linear -> Dropout -> activation). For ReLU both give the same function (ReLU(0) = 0 and ReLU(c z) =
            c ReLU(z) for c > 0); for sigmoid or tanh they differ (sigmoid(0) = 0.5: a dropped unit is not silent).
        init_scale: ``None`` keeps PyTorch's default initialisation; a number draws every weight from
            N(0, init_scale^2 / fan_in) and zeroes the biases: 1 is LeCun's scale, sqrt(2) He's (for ReLU); smaller
            shrinks the signal (and the gradients) layer after layer, larger blows them up.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[PositiveInt] = (),
        out_features: int = 10,
        activation: Activation = "relu",
        dropout: Fraction = 0.0,
        out_activation: Optional[Activation] = None,
        dropout_position: DropoutPosition = "after",
        init_scale: Optional[PositiveFloat] = None,
    ) -> None:
        check(Fraction, dropout=dropout)
        check(PositiveFloat, init_scale=init_scale)
        check(PositiveInt, hidden=hidden)
        check(DropoutPosition, dropout_position=dropout_position)
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            block = [nn.Linear(width, h), make_activation(activation)]
            if dropout:
                block.insert(1 if dropout_position == "before" else 2, nn.Dropout(dropout))
            layers += block
            width = h
        layers.append(nn.Linear(width, out_features))
        if out_activation:
            layers.append(make_activation(out_activation))
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features
        if init_scale is not None:
            for layer in self:
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=init_scale / layer.in_features**0.5)
                    nn.init.zeros_(layer.bias)

"""Conv arithmetic: output sizes, parameter counts, receptive field and jump through a stack of layers.

All sizes are per spatial dimension (call once for the height, once for the width). Conventions:

- output size of a convolution or pooling layer: ``floor((W + 2P - D(K - 1) - 1) / S) + 1``, i.e.
  ``floor((W - K + 2P) / S) + 1`` without dilation (``dlmnist.nn.conv_out``);
- output size of a transposed convolution: ``(W - 1) S - 2P + D(K - 1) + output_padding + 1``;
- parameters of a convolution: ``(K_h * K_w * C_in / groups + 1) * C_out`` (``+ 1`` is the bias);
- receptive field ``r`` and jump ``j`` (distance, in input pixels, between neighbouring outputs) of layer
  ``l``: ``r_l = r_{l-1} + (D(K - 1)) * j_{l-1}`` and ``j_l = j_{l-1} * S``, starting from ``r_0 = j_0 = 1``
  at the input. A pooling layer is a convolution for this purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dlmnist.nn.conv_encoder import conv_out
from dlmnist.utils.checks import NonNegativeInt, PositiveInt, check

__all__ = [
    "Field",
    "Layer",
    "conv_out",
    "conv_out_formula",
    "conv_params",
    "conv_params_formula",
    "conv_transpose_out",
    "receptive_fields",
    "step",
]


def conv_transpose_out(
    size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a transposed convolution: (W - 1) S - 2P + D(K - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_out_formula(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> str:
    """The output-size formula with the numbers put in, e.g. ``floor((28 + 2*2 - 5) / 1) + 1 = 28``."""
    span = f"{kernel}" if dilation == 1 else f"{dilation}*({kernel}-1) - 1"
    out = conv_out(size, kernel, stride, padding, dilation)
    return f"floor(({size} + 2*{padding} - {span}) / {stride}) + 1 = {out}"


def conv_params(kernel: int | Sequence[int], in_channels: int, out_channels: int, bias: bool = True, groups: int = 1):
    """Weights and biases of a convolution: (K_h * K_w * C_in / groups + 1) * C_out.

    ``kernel``: an int for a square K x K kernel, or one size per dimension ((K,) for a 1-D convolution).
    """
    k = [kernel, kernel] if isinstance(kernel, int) else list(kernel)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    per_filter = in_channels // groups
    for size in k:
        per_filter *= size
    return (per_filter + int(bias)) * out_channels


def conv_params_formula(kernel: Sequence[int], in_channels: int, out_channels: int, bias: bool = True, groups=1):
    """``(5*5*1 + 1) * 6 = 156``: the parameter count with the numbers put in."""
    c_in = f"{in_channels}" if groups == 1 else f"{in_channels}/{groups}"
    product = "*".join(str(k) for k in kernel) + f"*{c_in}"
    total = conv_params(kernel, in_channels, out_channels, bias, groups)
    return f"({product}{' + 1' if bias else ''}) * {out_channels} = {total}"


@dataclass(frozen=True)
class Layer:
    """One layer of a stack along one dimension: a convolution or a pooling window."""

    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        check(PositiveInt, kernel=self.kernel, stride=self.stride, dilation=self.dilation)
        check(NonNegativeInt, padding=self.padding)

    @property
    def span(self) -> int:
        """Input pixels one output looks at: D(K - 1) + 1 (a dilated kernel is wider than it has weights)."""
        return self.dilation * (self.kernel - 1) + 1


@dataclass(frozen=True)
class Field:
    """What one output pixel of a layer sees along one dimension.

    size: output length; rf: receptive field (input pixels); jump: input pixels between neighbouring outputs;
    start: centre of the first output's field in input pixel coordinates (pixel 0 has centre 0; negative
    values lie in the padding).
    """

    size: int
    rf: int = 1
    jump: int = 1
    start: float = 0.0


def step(field: Field, layer: Layer) -> Field:
    """The field after ``layer``, given the field of its input."""
    size = conv_out(field.size, layer.kernel, layer.stride, layer.padding, layer.dilation)
    return Field(
        size=size,
        rf=field.rf + (layer.span - 1) * field.jump,
        jump=field.jump * layer.stride,
        start=field.start + ((layer.span - 1) / 2 - layer.padding) * field.jump,
    )


def receptive_fields(layers: Iterable[Layer], input_size: int) -> list[Field]:
    """Field after each layer of a stack (the input's own field, size ``input_size``, is not included).

    Raises ValueError naming the first layer whose output would have no pixels left.
    """
    field, fields = Field(input_size), []
    for i, layer in enumerate(layers, start=1):
        nxt = step(field, layer)
        if nxt.size < 1:
            name = layer.name or f"layer {i}"
            raise ValueError(
                f"{name} (kernel {layer.kernel}, stride {layer.stride}, padding {layer.padding}, dilation "
                f"{layer.dilation}) shrinks its {field.size}-pixel input to {max(nxt.size, 0)} pixels"
            )
        fields.append(nxt)
        field = nxt
    return fields

"""What one torch layer does to a tensor's shape and to the receptive field, computed from its settings.

``predict(module, in_shape)`` gives a :class:`Prediction`: the output shape (without the batch dimension)
from the conv arithmetic of :mod:`dlmnist.analysis.conv_arithmetic`, how the receptive field changes, and the
arithmetic written out. Layer types it does not know give ``shape=None`` (the caller then takes the shape
from the forward pass and stops tracking the receptive field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch.nn as nn

from dlmnist.analysis.conv_arithmetic import Layer, conv_out, conv_out_formula, conv_params_formula, conv_transpose_out

Shape = tuple[int, ...]

# Layers that leave the shape alone and act on each position separately (the receptive field is unchanged).
POINTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh,
    nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Softmax, nn.LogSoftmax,
)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)


@dataclass
class Prediction:
    """shape: predicted output shape (no batch dim) or None; rf: "same" (unchanged), "all" (every output sees
    the whole input of the network), "windows" (``layers`` move the field, one Layer per spatial dim),
    "transposed" (a transposed conv, ``layers`` as for windows) or "unknown"."""

    kind: str
    shape: Shape | None
    rf: str = "same"
    layers: list[Layer] = field(default_factory=list)
    arithmetic: list[str] = field(default_factory=list)


def _tuple(value, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _window(module: nn.Module, spatial: Shape, transposed: bool = False) -> tuple[list[Layer], Shape, list[str]]:
    n = len(spatial)
    k, s = _tuple(module.kernel_size, n), _tuple(module.stride or module.kernel_size, n)
    d = _tuple(getattr(module, "dilation", 1), n)
    pad = module.padding
    if pad == "valid":
        pad = 0
    if pad == "same":  # stride 1 only (torch's rule): output = input, the extra pixel of an even span goes right
        p, out = tuple(di * (ki - 1) // 2 for di, ki in zip(d, k)), spatial
        return [Layer(*a) for a in zip(k, s, p, d)], out, [f"padding='same': {out}"]
    p = _tuple(pad, n)
    if transposed:
        op = _tuple(module.output_padding, n)
        out = tuple(conv_transpose_out(*a) for a in zip(spatial, k, s, p, op, d))
        notes = [f"({w}-1)*{si} - 2*{pi} + {di}*({ki}-1) + {o} + 1 = {y}" for w, ki, si, pi, o, di, y in
                 zip(spatial, k, s, p, op, d, out)]
    elif getattr(module, "ceil_mode", False):
        out = tuple(
            math.ceil((w + 2 * pi - di * (ki - 1) - 1) / si) + 1 for w, ki, si, pi, di in zip(spatial, k, s, p, d)
        )
        notes = [f"ceil_mode: {y}" for y in out]
    else:
        out = tuple(conv_out(*a) for a in zip(spatial, k, s, p, d))
        notes = [conv_out_formula(*a) for a in zip(spatial, k, s, p, d)]
    dims = "HW" if n == 2 else ("L" if n == 1 else "DHW")
    return [Layer(*a) for a in zip(k, s, p, d)], out, [f"{dim}: {t}" for dim, t in zip(dims, notes)]


def _settings(k, s, p, d) -> str:
    text = "x".join(map(str, k))
    if any(v != 1 for v in s):
        text += f" s{'x'.join(map(str, s)) if len(set(s)) > 1 else s[0]}"
    if any(v != 0 for v in p):
        text += f" p{'x'.join(map(str, p)) if len(set(p)) > 1 else p[0]}"
    if any(v != 1 for v in d):
        text += f" d{'x'.join(map(str, d)) if len(set(d)) > 1 else d[0]}"
    return text


def predict(module: nn.Module, in_shape: Shape) -> Prediction:
    """Output shape and receptive-field effect of ``module`` on an input of shape ``in_shape`` (no batch dim)."""
    name = type(module).__name__
    if isinstance(module, CONVS + TRANSPOSED):
        transposed = isinstance(module, TRANSPOSED)
        layers, out, notes = _window(module, in_shape[1:], transposed)
        kernel = [layer.kernel for layer in layers]
        params = conv_params_formula(kernel, module.in_channels, module.out_channels, module.bias is not None,
                                     module.groups)
        settings = _settings(kernel, [la.stride for la in layers], [la.padding for la in layers],
                             [la.dilation for la in layers])
        return Prediction(f"{name} {settings}", (module.out_channels, *out), "transposed" if transposed else "windows",
                          layers, [*notes, f"params: {params}"])
    if isinstance(module, POOLS):
        layers, out, notes = _window(module, in_shape[1:])
        settings = _settings([la.kernel for la in layers], [la.stride for la in layers],
                             [la.padding for la in layers], [la.dilation for la in layers])
        return Prediction(f"{name} {settings}", (in_shape[0], *out), "windows", layers, notes)
    if isinstance(module, ADAPTIVE):
        size = _tuple(module.output_size, len(in_shape) - 1)
        out = tuple(w if o is None else o for w, o in zip(in_shape[1:], size))
        return Prediction(name, (in_shape[0], *out), "all" if all(o == 1 for o in out) else "unknown")
    if isinstance(module, POINTWISE):
        return Prediction(name, tuple(in_shape))
    if isinstance(module, nn.Flatten):
        full = (1, *in_shape)  # start_dim/end_dim count the batch dimension
        start, end = module.start_dim % len(full), module.end_dim % len(full)
        out = (*full[:start], math.prod(full[start : end + 1]), *full[end + 1 :])
        return Prediction(name, out[1:])
    if isinstance(module, nn.Linear):
        # on a (B, F) vector every output mixes every feature; on (B, N, F) tokens it acts per token
        rf = "all" if len(in_shape) == 1 else "same"
        params = f"params: ({module.in_features} + {int(module.bias is not None)}) * {module.out_features}"
        total = (module.in_features + int(module.bias is not None)) * module.out_features
        return Prediction(f"{name} {module.in_features}->{module.out_features}", (*in_shape[:-1], module.out_features),
                          rf, arithmetic=[f"{params} = {total}"])
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)):
        per_position = isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1
        return Prediction(name, tuple(in_shape), "same" if per_position else "all")
    if isinstance(module, nn.MultiheadAttention):  # every token attends to every token
        return Prediction(f"{name} {module.num_heads} heads", tuple(in_shape), "all")
    return Prediction(name, None, "unknown")

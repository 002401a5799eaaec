"""Layers as matrices: analytic Jacobians of a bias, a fully connected layer and a convolution.

A layer that is linear in its input, ``y = J x (+ b)``, has the constant Jacobian ``J``:

- adding a bias vector: ``J = I`` (the identity; the bias does not depend on x);
- a fully connected layer ``y = W x + b``: ``J = W``;
- a convolution: ``J`` is the matrix whose row for output ``(o, i, j)`` holds the kernel ``w[o]`` placed at
  the input pixels that output sees; the same weights repeat, shifted, along its diagonals (a Toeplitz
  matrix in 1-D, a block Toeplitz matrix of Toeplitz blocks in 2-D), and most entries are zero.

A transposed convolution with the same kernel, stride and padding is the transposed matrix ``J^T``, i.e. the
adjoint of the convolution: ``<conv(x), y> = <conv_transpose(y), x>`` for every x and y.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlmnist.analysis.conv_arithmetic import conv_out, conv_transpose_out


def bias_jacobian(n: int, dtype=torch.float64) -> torch.Tensor:
    """Jacobian of ``x -> x + b`` for ``x`` of ``n`` entries: the identity."""
    return torch.eye(n, dtype=dtype)


def linear_jacobian(weight: torch.Tensor) -> torch.Tensor:
    """Jacobian of ``x -> W x + b``: ``W`` itself, ``(out, in)``."""
    return weight.clone()


def conv2d_matrix(
    weight: torch.Tensor, in_shape: tuple[int, int, int], stride: int = 1, padding: int = 0, dilation: int = 1
) -> torch.Tensor:
    """The ``(C_out*H_out*W_out, C_in*H*W)`` matrix J with ``conv2d(x).flatten() = J @ x.flatten()`` (no bias).

    Built by placing the kernel: output pixel (o, i, j) reads input pixel (c, i*S - P + a*D, j*S - P + b*D)
    with weight w[o, c, a, b]; taps that land in the zero padding have no column.
    """
    c_out, c_in, kh, kw = weight.shape
    _, h, w = in_shape
    h_out, w_out = conv_out(h, kh, stride, padding, dilation), conv_out(w, kw, stride, padding, dilation)
    m = torch.zeros(c_out, h_out, w_out, c_in, h, w, dtype=weight.dtype)
    for i in range(h_out):
        for j in range(w_out):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * stride - padding + a * dilation, j * stride - padding + b * dilation
                    if 0 <= r < h and 0 <= c < w:
                        m[:, i, j, :, r, c] += weight[:, :, a, b]  # (C_out, C_in)
    return m.reshape(c_out * h_out * w_out, c_in * h * w)


def conv1d_matrix(kernel: torch.Tensor, length: int) -> torch.Tensor:
    """Single-channel, stride-1, unpadded 1-D convolution (cross-correlation) as a Toeplitz matrix."""
    k = len(kernel)
    m = torch.zeros(length - k + 1, length, dtype=kernel.dtype)
    for i in range(length - k + 1):
        m[i, i : i + k] = kernel  # each row is the row above shifted right by one
    return m


def is_toeplitz(m: torch.Tensor) -> bool:
    """Constant along every diagonal: m[i, j] == m[i + 1, j + 1]."""
    return bool(torch.equal(m[:-1, :-1], m[1:, 1:]))


def adjoint_gap(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0) -> float:
    """``|<conv(x), y> - <conv_transpose(y), x>|`` relative to their size (0 up to rounding: the two are adjoint).

    ``output_padding`` gives back the input rows that a stride drops, so that conv_transpose(y) has x's shape;
    the output size of the transposed convolution is ``(W_out - 1) S - 2P + (K - 1) + output_padding + 1``.
    """
    out = F.conv2d(x, weight, stride=stride, padding=padding)  # (B, C_out, H_out, W_out)
    k = weight.shape[-1]
    extra = [x.shape[d] - conv_transpose_out(out.shape[d], k, stride, padding) for d in (-2, -1)]
    back = F.conv_transpose2d(y, weight, stride=stride, padding=padding, output_padding=tuple(extra))
    lhs, rhs = (out * y).sum(), (back * x).sum()
    return float((lhs - rhs).abs() / max(lhs.abs(), rhs.abs(), torch.tensor(1e-12)))

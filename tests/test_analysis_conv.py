"""Conv arithmetic against worked examples, receptive fields by hand, Jacobians and the conv/transposed-conv adjoint."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from dlmnist.analysis.conv_arithmetic import Layer, conv_out, conv_params, conv_transpose_out, receptive_fields
from dlmnist.reference import Conv2d as NumpyConv2d
from dlmnist.reference.jacobian import (
    adjoint_gap,
    bias_jacobian,
    conv1d_matrix,
    conv2d_matrix,
    is_toeplitz,
    linear_jacobian,
)


def test_identity_kernel_stride_2_worked_example():
    x = torch.tensor([[2, 5, 4, 1], [3, 1, 2, 0], [4, 5, 7, 1], [1, 2, 3, 4]], dtype=torch.float64)
    kernel = torch.eye(2, dtype=torch.float64)  # [[1, 0], [0, 1]]
    expected = [[3, 4], [6, 11]]
    assert F.conv2d(x[None, None], kernel[None, None], stride=2)[0, 0].tolist() == expected
    ours = NumpyConv2d(1, 1, 2, stride=2)
    ours.params["weight"][...] = kernel.numpy()
    ours.params["bias"][...] = 0
    assert ours.forward(x[None, None].numpy())[0, 0].tolist() == expected
    assert conv_out(4, 2, stride=2) == 2


@pytest.mark.parametrize(
    "size, c_in, k, c_out, stride, out, params",
    [(144, 3, 3, 6, 1, 142, 168), (60, 24, 3, 48, 1, 58, 10_416), (20, 10, 3, 20, 2, 9, 1_820)],
)
def test_output_size_and_parameter_worked_examples(size, c_in, k, c_out, stride, out, params):
    assert conv_out(size, k, stride) == out
    assert conv_params(k, c_in, c_out) == params
    conv = nn.Conv2d(c_in, c_out, k, stride)
    assert conv(torch.zeros(1, c_in, size, size)).shape == (1, c_out, out, out)
    assert sum(p.numel() for p in conv.parameters()) == params


def test_receptive_field_of_the_1024_stack():
    """conv 3x3 pad 1 -> max-pool 2 -> conv 5x5 s2 pad 2 -> max-pool 2 -> conv 7x7 dilation 2 pad 3 on 1024x1024."""
    stack = [Layer(3, 1, 1), Layer(2, 2), Layer(5, 2, 2), Layer(2, 2), Layer(7, 1, 3, dilation=2)]
    fields = receptive_fields(stack, 1024)
    # by hand: r = 1 + 2*1 = 3; + 1*1 = 4 (jump 2); + 4*2 = 12 (jump 4); + 1*4 = 16 (jump 8); + 2*6*8 = 112
    assert [f.rf for f in fields] == [3, 4, 12, 16, 112]
    assert [f.jump for f in fields] == [1, 2, 4, 8, 8]
    assert [f.size for f in fields] == [1024, 512, 256, 128, 122]
    torch_stack = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 5, 2, 2), nn.MaxPool2d(2),
        nn.Conv2d(1, 1, 7, padding=3, dilation=2),
    )
    assert torch_stack(torch.zeros(1, 1, 1024, 1024)).shape[-2:] == (122, 122)


def test_receptive_field_with_pooling_and_dilation_by_hand_and_by_gradient():
    """conv 3x3 -> max-pool 2 -> conv 3x3 dilation 2 on 32x32: sizes 30, 15, 15 - 4 = 11;
    receptive field r = 1 + 2 = 3; + 1*1 = 4 (jump 2); + (2*(3-1))*2 = 12."""
    fields = receptive_fields([Layer(3), Layer(2, 2), Layer(3, dilation=2)], 32)
    assert (fields[-1].rf, fields[-1].jump, fields[-1].size) == (12, 2, 11)
    # the input pixels that reach one output pixel (non-zero gradient) span exactly 12 x 12
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, dilation=2)).double()
    x = torch.randn(1, 1, 32, 32, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, 4, 4].backward()
    rows, cols = x.grad[0, 0].abs().sum(1).nonzero(), x.grad[0, 0].abs().sum(0).nonzero()
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (12, 12)


def test_a_stack_shrinking_to_zero_names_the_layer():
    with pytest.raises(ValueError, match=r"layer 3 \(kernel 5.*shrinks its 4-pixel input to 0 pixels"):
        receptive_fields([Layer(5), Layer(2, 2), Layer(5)], 12)


def test_transposed_conv_output_size():
    for size, k, s, p, op in [(7, 4, 2, 1, 0), (5, 3, 2, 1, 1), (10, 5, 1, 2, 0), (3, 3, 3, 0, 2)]:
        conv_t = nn.ConvTranspose2d(1, 1, k, s, p, output_padding=op)
        assert conv_t(torch.zeros(1, 1, size, size)).shape[-1] == conv_transpose_out(size, k, s, p, op)
    assert conv_transpose_out(7, 4, 2, 1) == 14  # the ConvDecoder's doubling: 7 -> 14 -> 28


def test_jacobians_of_bias_linear_and_conv_equal_autograd():
    torch.manual_seed(0)
    x = torch.randn(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    assert torch.allclose(jacobian(lambda t: t + b, x), bias_jacobian(6))
    w, bias = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    assert torch.allclose(jacobian(lambda t: F.linear(t, w, bias), x), linear_jacobian(w))
    img = torch.randn(2, 5, 6, dtype=torch.float64)  # (C, H, W)
    kernel = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    for stride, padding, dilation in [(1, 0, 1), (2, 1, 1), (1, 2, 2)]:
        conv = lambda t: F.conv2d(t[None], kernel, stride=stride, padding=padding, dilation=dilation).flatten()  # noqa: E731,B023
        auto = jacobian(conv, img).reshape(-1, img.numel())
        assert torch.allclose(auto, conv2d_matrix(kernel, tuple(img.shape), stride, padding, dilation))


def test_1d_conv_matrix_is_toeplitz():
    kernel, x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    m = conv1d_matrix(kernel, 8)
    assert is_toeplitz(m) and not is_toeplitz(torch.randn(6, 8))
    assert torch.allclose(m @ x, F.conv1d(x[None, None], kernel[None, None]).flatten())
    assert torch.allclose(jacobian(lambda t: F.conv1d(t[None, None], kernel[None, None]).flatten(), x), m)


@pytest.mark.parametrize("stride, padding, size", [(1, 0, 8), (1, 1, 7), (2, 1, 9), (2, 0, 8), (3, 2, 11)])
def test_transposed_conv_is_the_adjoint_of_conv(stride, padding, size):
    g = torch.Generator().manual_seed(stride * 10 + padding)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(2, 3, size, size, generator=g, dtype=torch.float64)
    out = F.conv2d(x, w, stride=stride, padding=padding)
    y = torch.randn(out.shape, generator=g, dtype=torch.float64)
    assert adjoint_gap(x, y, w, stride, padding) < 1e-12
    # and as matrices: the Jacobian of conv_transpose is the transposed conv matrix
    m = conv2d_matrix(w, tuple(x.shape[1:]), stride, padding)
    extra = [size - conv_transpose_out(out.shape[d], 3, stride, padding) for d in (-2, -1)]
    conv_t = lambda t: F.conv_transpose2d(t[None], w, stride=stride, padding=padding, output_padding=tuple(extra))  # noqa: E731
    assert torch.allclose(jacobian(conv_t, y[0]).reshape(x[0].numel(), -1), m.T)

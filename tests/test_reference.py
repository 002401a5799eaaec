"""The NumPy reference layers equal PyTorch's forward and backward in float64; numerical gradients equal autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlmnist.reference import (
    AvgPool2d,
    Conv1d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Tanh,
    lenet5,
    numerical_gradient,
    relative_error,
    softmax_cross_entropy,
)

TOL = 1e-10


def _pair(ours, theirs: nn.Module | None, shape):
    """Copy our parameters into the torch layer, then run both forward and backward on the same data."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)
    if theirs is not None:
        with torch.no_grad():
            for key, value in ours.params.items():
                getattr(theirs, key).copy_(torch.from_numpy(value))
    y = ours.forward(x)
    dout = rng.normal(size=y.shape)
    dx = ours.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt) if theirs is not None else xt.flatten(1)
    (yt * torch.from_numpy(dout)).sum().backward()  # dLoss/dy = dout
    assert y.shape == tuple(yt.shape)
    assert relative_error(y, yt.detach().numpy()) < TOL, "forward"
    assert relative_error(dx, xt.grad.numpy()) < TOL, "input gradient"
    for key in ours.params:
        assert relative_error(ours.grads[key], getattr(theirs, key).grad.numpy()) < TOL, key


CASES = {
    "conv1d": (lambda r: Conv1d(3, 4, 5, rng=r), lambda: nn.Conv1d(3, 4, 5), (2, 3, 17)),
    "conv1d_stride_pad": (lambda r: Conv1d(2, 3, 3, 2, 1, rng=r), lambda: nn.Conv1d(2, 3, 3, 2, 1), (2, 2, 10)),
    "conv2d": (lambda r: Conv2d(3, 4, 3, rng=r), lambda: nn.Conv2d(3, 4, 3), (2, 3, 8, 8)),
    "conv2d_stride_pad": (lambda r: Conv2d(2, 5, 5, 2, 2, rng=r), lambda: nn.Conv2d(2, 5, 5, 2, 2), (3, 2, 11, 9)),
    "maxpool": (lambda r: MaxPool2d(2), lambda: nn.MaxPool2d(2), (2, 3, 8, 6)),
    "maxpool_overlap": (lambda r: MaxPool2d(3, 2), lambda: nn.MaxPool2d(3, 2), (2, 2, 9, 9)),
    "avgpool": (lambda r: AvgPool2d(2), lambda: nn.AvgPool2d(2), (2, 3, 8, 6)),
    "avgpool_overlap": (lambda r: AvgPool2d(3, 2), lambda: nn.AvgPool2d(3, 2), (2, 2, 9, 9)),
    "relu": (lambda r: ReLU(), lambda: nn.ReLU(), (4, 7)),
    "tanh": (lambda r: Tanh(), lambda: nn.Tanh(), (4, 7)),
    "linear": (lambda r: Linear(7, 5, rng=r), lambda: nn.Linear(7, 5), (4, 7)),
    "flatten": (lambda r: Flatten(), lambda: nn.Flatten(), (2, 3, 4, 5)),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_layer_matches_torch(case):
    ours, theirs, shape = CASES[case]
    _pair(ours(np.random.default_rng(0)), theirs().double(), shape)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(6, 10)) * 3, rng.integers(0, 10, 6)
    loss, grad = softmax_cross_entropy(logits, labels)
    lt = torch.tensor(logits, requires_grad=True)
    expected = F.cross_entropy(lt, torch.from_numpy(labels))
    expected.backward()
    assert abs(loss - expected.item()) < TOL
    assert relative_error(grad, lt.grad.numpy()) < TOL


def test_lenet5_matches_torch_model_and_counts_parameters():
    """The whole NumPy LeNet-5, with the weights of dlmnist's PyTorch LeNet-5, gives the same logits and gradients."""
    from dlmnist.config import model_from_config

    from .conftest import CONFIGS

    torch_model = model_from_config(CONFIGS / "lenet5.yaml").double().eval()
    ours = lenet5()
    assert ours.num_parameters() == sum(p.numel() for p in torch_model.parameters()) == 61706
    theirs = [m for m in torch_model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    mine = [layer for layer in ours.layers if layer.params]
    assert len(mine) == len(theirs) == 5  # conv, conv, three linear: zip below pairs them all
    for a, b in zip(mine, theirs):
        for key in a.params:
            a.params[key][...] = getattr(b, key).detach().numpy()
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28))
    y = np.array([1, 7, 3])
    loss, dlogits = softmax_cross_entropy(ours.forward(x), y)
    ours.backward(dlogits)
    expected = F.cross_entropy(torch_model(torch.from_numpy(x)), torch.from_numpy(y))
    expected.backward()
    assert abs(loss - expected.item()) < TOL
    for a, b in zip(mine, theirs):
        assert relative_error(a.grads["weight"], b.weight.grad.numpy()) < 1e-9


def test_numerical_gradient_of_reference_model_matches_its_backward():
    rng = np.random.default_rng(0)
    model = Sequential(
        Conv2d(1, 2, 3, padding=1, rng=rng), Tanh(), MaxPool2d(2), Flatten(), Linear(2 * 3 * 3, 3, rng=rng)
    )
    x, y = rng.normal(size=(2, 1, 6, 6)), np.array([0, 2])
    loss = lambda: softmax_cross_entropy(model.forward(x), y)[0]  # noqa: E731
    _, dlogits = softmax_cross_entropy(model.forward(x), y)
    dx = model.backward(dlogits)
    assert relative_error(numerical_gradient(loss, x), dx) < 1e-7
    for name, value, grads, key in model.parameters():
        assert relative_error(numerical_gradient(loss, value), grads[key]) < 1e-7, name


def test_numerical_gradient_matches_autograd_for_a_small_torch_model():
    """Central differences against backprop, the check torch.autograd.gradcheck makes, on a small CNN in float64."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3)).double()
    x, y = torch.randn(2, 1, 6, 6, dtype=torch.float64), torch.tensor([0, 2])
    F.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        arr = p.data.numpy()  # shares memory with the parameter: perturbing it perturbs the model

        def loss():
            with torch.no_grad():
                return F.cross_entropy(model(x), y).item()

        assert relative_error(numerical_gradient(loss, arr), p.grad.numpy()) < 1e-7, name
    assert torch.autograd.gradcheck(lambda inp: F.cross_entropy(model(inp), y), (x.clone().requires_grad_(),))


def test_numerical_gradient_detects_a_wrong_gradient():
    w = np.array([1.0, -2.0, 3.0])
    num = numerical_gradient(lambda: float((w**3).sum()), w)
    assert relative_error(num, 3 * w**2) < 1e-8
    assert relative_error(num, 2 * w) > 0.1  # a wrong derivative is caught

"""The by-hand gradients of sheet 002's two-layer MLP equal torch.autograd's, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlmnist.reference.backprop import NAMES, main, mlp2_loss_and_grads, random_problem
from dlmnist.reference.gradcheck import numerical_gradient, relative_error


def torch_loss(x, y, params, activation, loss, weight_decay):
    """The loss written directly in PyTorch (independent of the module's own autograd helper)."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in [*params.items(), ("x", x)]}
    h = getattr(torch, activation)(t["x"] @ t["W1"].T + t["b1"])
    z2 = h @ t["W2"].T + t["b2"]
    if loss == "bce":
        data = F.binary_cross_entropy(torch.sigmoid(z2).squeeze(1), torch.from_numpy(y))
    else:
        data = F.cross_entropy(z2, torch.from_numpy(y))
    return data + weight_decay / 2 * (t["W1"].pow(2).sum() + t["W2"].pow(2).sum()), t


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("loss", ["bce", "cross_entropy"])
def test_by_hand_gradients_equal_autograd(loss, activation):
    x, y, params = random_problem(loss, n=12, d=20, hidden=7, classes=4, seed=3)
    value, grads = mlp2_loss_and_grads(x, y, params, activation, loss, weight_decay=0.1)
    expected, t = torch_loss(x, y, params, activation, loss, 0.1)
    expected.backward()
    assert value == pytest.approx(float(expected.detach()), rel=1e-12)
    for name in NAMES:
        assert grads[name].shape == t[name].shape
        np.testing.assert_allclose(grads[name], t[name].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_weight_decay_adds_lambda_w_to_the_weights_only():
    x, y, params = random_problem("bce", n=5, d=6, hidden=3, seed=1)
    _, plain = mlp2_loss_and_grads(x, y, params, weight_decay=0.0)
    _, decayed = mlp2_loss_and_grads(x, y, params, weight_decay=0.5)
    for name in NAMES:
        extra = 0.5 * params[name] if name in ("W1", "W2") else 0.0
        np.testing.assert_allclose(decayed[name], plain[name] + extra, rtol=1e-12, err_msg=name)


def test_by_hand_gradient_of_the_input_equals_central_differences():
    x, y, params = random_problem("cross_entropy", n=4, d=6, hidden=5, classes=3, seed=2)
    _, grads = mlp2_loss_and_grads(x, y, params, "tanh", "cross_entropy", 0.1)
    numeric = numerical_gradient(lambda: mlp2_loss_and_grads(x, y, params, "tanh", "cross_entropy", 0.1)[0], x)
    assert relative_error(numeric, grads["x"]) < 1e-7


def test_bce_stays_finite_for_huge_logits():
    x, y, params = random_problem("bce", n=4, d=3, hidden=2, seed=0)
    params["b2"] = np.array([800.0])  # sigmoid(800) is 1 in float64: log(1 - p) would be -inf
    value, grads = mlp2_loss_and_grads(x, np.zeros(4), params)
    assert np.isfinite(value) and value == pytest.approx(800.0, rel=1e-2)
    assert all(np.isfinite(g).all() for g in grads.values())


def test_unknown_loss_or_activation_is_named():
    x, y, params = random_problem("bce", n=2, d=3, hidden=2)
    with pytest.raises(ValueError, match="loss must be bce or cross_entropy"):
        mlp2_loss_and_grads(x, y, params, loss="mse")
    with pytest.raises(ValueError, match="activation must be tanh, sigmoid or relu"):
        mlp2_loss_and_grads(x, y, params, activation="gelu")
    _, _, ce_params = random_problem("cross_entropy", n=2, d=3, hidden=2, classes=3)
    with pytest.raises(ValueError, match="bce needs one output"):
        mlp2_loss_and_grads(x, y, ce_params, loss="bce")


def test_the_command_prints_one_line_per_gradient(capsys):
    assert main(["--loss", "cross_entropy", "--activation", "relu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + len(NAMES)
    assert all(float(line.rsplit("= ", 1)[1]) < 1e-12 for line in out[1:])

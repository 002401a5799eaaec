"""The two-layer MLP of sheet 002 (backpropagation 1) with its gradients written out by hand, in NumPy.

Rows are samples (``x`` is ``(N, D)``) and the weights are stored as ``torch.nn.Linear`` stores them
(``W1`` is ``(H, D)``, ``W2`` is ``(C, H)``)::

    z1 = x W1^T + b1            (N, H)      dz2 = dl/dz2 / N        (N, C)   the loss's own gradient
    h  = phi(z1)                (N, H)      dW2 = dz2^T h + lam W2  (C, H)
    z2 = h W2^T + b2            (N, C)      db2 = sum_n dz2         (C,)
    L  = mean_n l(y, z2) + lam/2 (|W1|^2 + |W2|^2)    dh = dz2 W2   (N, H)
                                            dz1 = dh * phi'(z1)     (N, H)
                                            dW1 = dz1^T x + lam W1  (H, D)
                                            db1 = sum_n dz1         (H,)
                                            dx  = dz1 W1            (N, D)

Losses on the logits ``z2``: ``bce`` (one output, ``y_hat = sigmoid(z2)``, binary cross-entropy: ``dl/dz2 =
y_hat - y``) or ``cross_entropy`` (``C`` outputs, softmax cross-entropy: ``dl/dz2 = softmax(z2) - onehot(y)``).

``python -m dlmnist.reference.backprop`` compares every gradient with torch.autograd's, in float64.
"""

from __future__ import annotations

import argparse
from typing import Literal

import numpy as np

from dlmnist.reference.model import softmax_cross_entropy

Loss = Literal["bce", "cross_entropy"]
Phi = Literal["tanh", "sigmoid", "relu"]
NAMES = ("W1", "b1", "W2", "b2", "x")


def _phi(name: Phi, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi(z) and phi'(z)."""
    if name == "tanh":
        h = np.tanh(z)
        return h, 1.0 - h**2
    if name == "sigmoid":
        h = 1.0 / (1.0 + np.exp(-z))
        return h, h * (1.0 - h)
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
    raise ValueError(f"activation must be tanh, sigmoid or relu, not {name!r}")


def _bce_with_logits(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of ``sigmoid(z)`` against 0/1 labels, and d/dz of the *sum* (``p - y``).

    ``-y log p - (1 - y) log(1 - p) = log(1 + e^z) - y z``, written so that ``exp`` never overflows."""
    loss = np.maximum(z, 0.0) - y * z + np.log1p(np.exp(-np.abs(z)))
    return float(loss.mean()), 1.0 / (1.0 + np.exp(-z)) - y


def mlp2_loss_and_grads(
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, np.ndarray],
    activation: Phi = "tanh",
    loss: Loss = "bce",
    weight_decay: float = 0.0,
) -> tuple[float, dict[str, np.ndarray]]:
    """``L`` and ``{"W1", "b1", "W2", "b2", "x": dL/d...}`` by the chain rule (the module docstring's formulas).

    ``y``: ``(N,)`` 0/1 labels for ``bce`` (then ``W2`` is ``(1, H)``), class indices for ``cross_entropy``.
    """
    W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
    n = len(x)
    h, dphi = _phi(activation, x @ W1.T + b1)  # (N, H)
    z2 = h @ W2.T + b2  # (N, C)
    if loss == "bce":
        if z2.shape[1] != 1:
            raise ValueError(f"bce needs one output (W2 of shape (1, H)), not {W2.shape}")
        data_loss, dz2 = _bce_with_logits(z2[:, 0], y)
        dz2 = dz2[:, None] / n  # (N, 1)
    elif loss == "cross_entropy":
        data_loss, dz2 = softmax_cross_entropy(z2, y.astype(int))  # dz2 already divided by N
    else:
        raise ValueError(f"loss must be bce or cross_entropy, not {loss!r}")
    value = data_loss + weight_decay / 2 * ((W1**2).sum() + (W2**2).sum())
    dz1 = (dz2 @ W2) * dphi  # (N, H)
    grads = {
        "W1": dz1.T @ x + weight_decay * W1,
        "b1": dz1.sum(axis=0),
        "W2": dz2.T @ h + weight_decay * W2,
        "b2": dz2.sum(axis=0),
        "x": dz1 @ W1,
    }
    return float(value), grads


def autograd_grads(x, y, params, activation: Phi = "tanh", loss: Loss = "bce", weight_decay: float = 0.0):
    """The same loss in PyTorch (float64) and its gradients from ``torch.autograd``, as NumPy arrays."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in [*params.items(), ("x", x)]}
    phi = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[activation]
    z2 = phi(t["x"] @ t["W1"].T + t["b1"]) @ t["W2"].T + t["b2"]
    if loss == "bce":
        data_loss = F.binary_cross_entropy_with_logits(z2[:, 0], torch.tensor(y, dtype=torch.float64))
    else:
        data_loss = F.cross_entropy(z2, torch.tensor(y, dtype=torch.long))
    value = data_loss + weight_decay / 2 * (t["W1"].pow(2).sum() + t["W2"].pow(2).sum())
    grads = torch.autograd.grad(value, [t[k] for k in NAMES])
    return float(value.detach()), {k: g.numpy() for k, g in zip(NAMES, grads)}


def random_problem(
    loss: Loss = "bce", n: int = 16, d: int = 784, hidden: int = 32, classes: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(x, y, params)`` in float64: inputs in [0, 1) like MNIST pixels, labels, weights N(0, 1/fan_in)."""
    rng = np.random.default_rng(seed)
    c = 1 if loss == "bce" else classes
    params = {
        "W1": rng.normal(size=(hidden, d)) / np.sqrt(d),
        "b1": rng.normal(size=hidden) * 0.1,
        "W2": rng.normal(size=(c, hidden)) / np.sqrt(hidden),
        "b2": rng.normal(size=c) * 0.1,
    }
    y = rng.integers(0, 2 if loss == "bce" else classes, size=n)
    return rng.random((n, d)), (y.astype(float) if loss == "bce" else y), params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlmnist.reference.backprop", description=__doc__.split("\n")[0])
    parser.add_argument("--loss", choices=["bce", "cross_entropy"], default="bce")
    parser.add_argument("--activation", choices=["tanh", "sigmoid", "relu"], default="tanh")
    parser.add_argument("--weight_decay", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, y, params = random_problem(args.loss, seed=args.seed)
    options = {"activation": args.activation, "loss": args.loss, "weight_decay": args.weight_decay}
    value, mine = mlp2_loss_and_grads(x, y, params, **options)
    auto_value, auto = autograd_grads(x, y, params, **options)
    print(f"loss by hand {value:.12f}, autograd {auto_value:.12f}")
    for name in NAMES:
        err = np.abs(mine[name] - auto[name]).max() / max(np.abs(auto[name]).max(), 1e-300)
        print(f"d{name:<2} {str(mine[name].shape):<10} max |by hand - autograd| / max |autograd| = {err:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

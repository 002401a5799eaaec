"""A sequential model, softmax cross-entropy, SGD with momentum and LeNet-5, from the NumPy layers."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlmnist.reference.numpy_layers import AvgPool2d, Conv2d, Flatten, Layer, Linear, Tanh


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``(B, classes)`` logits against ``(B,)`` integer labels, and dLoss/dlogits.

    The gradient of softmax followed by cross-entropy is simply ``(softmax(logits) - onehot(labels)) / B``.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)  # same softmax, no overflow in exp
    log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, classes)
    n = len(labels)
    loss = -log_prob[np.arange(n), labels].mean()
    grad = np.exp(log_prob)
    grad[np.arange(n), labels] -= 1.0
    return float(loss), grad / n


class Sequential(Layer):
    """Layers applied in order; ``backward`` runs them in reverse (the chain rule, one layer at a time)."""

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> Iterator[tuple[str, np.ndarray, dict[str, np.ndarray], str]]:
        """(name, value, the layer's grads dict, key) for every parameter, e.g. ("0.weight", ...)."""
        for i, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                yield f"{i}.{key}", value, layer.grads, key

    def num_parameters(self) -> int:
        return sum(value.size for _, value, _, _ in self.parameters())


class SGD:
    """Plain SGD with momentum: v = m v + g; w -= lr v (PyTorch's convention), updating the arrays in place."""

    def __init__(self, model: Sequential, lr: float = 0.05, momentum: float = 0.9) -> None:
        self.model, self.lr, self.momentum = model, lr, momentum
        self.velocity = {name: np.zeros_like(value) for name, value, _, _ in model.parameters()}

    def step(self) -> None:
        for name, value, grads, key in self.model.parameters():
            v = self.velocity[name]
            v *= self.momentum
            v += grads[key]
            value -= self.lr * v


def lenet5(rng: np.random.Generator | None = None) -> Sequential:
    """LeNet-5 as in ``configs/lenet5.yaml``: conv 6@5x5 (pad 2) - tanh - avg pool 2 - conv 16@5x5 - tanh - avg pool 2
    - FC 120 - tanh - FC 84 - tanh - FC 10; 61,706 parameters, like the PyTorch model."""
    rng = rng or np.random.default_rng(0)
    return Sequential(
        Conv2d(1, 6, 5, padding=2, rng=rng),  # (B, 1, 28, 28) -> (B, 6, 28, 28)
        Tanh(),
        AvgPool2d(2),  # -> (B, 6, 14, 14)
        Conv2d(6, 16, 5, rng=rng),  # -> (B, 16, 10, 10)
        Tanh(),
        AvgPool2d(2),  # -> (B, 16, 5, 5)
        Flatten(),  # -> (B, 400)
        Linear(400, 120, rng=rng),
        Tanh(),
        Linear(120, 84, rng=rng),
        Tanh(),
        Linear(84, 10, rng=rng),  # -> (B, 10) logits
    )

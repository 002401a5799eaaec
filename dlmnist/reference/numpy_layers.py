"""Layers in plain NumPy, each with ``forward`` and ``backward``, written to be read next to PyTorch's.

Conventions (the same as ``torch.nn``): images are ``(B, C, H, W)``, sequences ``(B, C, L)``; a conv weight
is ``(C_out, C_in, K, K)``, a linear weight ``(out, in)``. ``forward(x)`` remembers what ``backward`` needs;
``backward(dout)`` takes dLoss/dOutput, stores dLoss/dParameter in ``self.grads`` (same keys as
``self.params``) and returns dLoss/dInput. Initial weights follow PyTorch's default range
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

Convolution and pooling loop over the kernel taps ``(i, j)`` and are vectorised over batch, channels and
output positions: for tap ``(i, j)`` the input pixels under it, for every output position, are the strided
slice ``x[:, :, i : i + S*(H_out-1) + 1 : S, j : ... : S]``, of shape ``(B, C, H_out, W_out)``.
"""

from __future__ import annotations

import numpy as np


class Layer:
    """A layer without parameters unless a subclass sets ``self.params``."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _uniform(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


def _taps(size: int, kernel: int, stride: int) -> tuple[int, list[slice]]:
    """Output length and, for each kernel tap, the strided slice of input positions it touches."""
    out = (size - kernel) // stride + 1
    return out, [slice(i, i + stride * (out - 1) + 1, stride) for i in range(kernel)]


class Conv1d(Layer):
    """``(B, C_in, L)`` -> ``(B, C_out, L_out)``, L_out = floor((L + 2P - K) / S) + 1."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None) -> None:
        super().__init__()
        rng = rng or np.random.default_rng()
        fan_in = in_channels * kernel_size
        self.params = {
            "weight": _uniform(rng, fan_in, (out_channels, in_channels, kernel_size)),
            "bias": _uniform(rng, fan_in, (out_channels,)),
        }
        self.k, self.s, self.p = kernel_size, stride, padding

    def forward(self, x):
        xp = np.pad(x, ((0, 0), (0, 0), (self.p, self.p)))  # (B, C_in, L + 2P)
        _, self.taps = _taps(xp.shape[2], self.k, self.s)
        w, b = self.params["weight"], self.params["bias"]
        out = b[None, :, None] + sum(np.einsum("bcl,oc->bol", xp[:, :, t], w[:, :, i]) for i, t in enumerate(self.taps))
        self.xp = xp
        return out  # (B, C_out, L_out)

    def backward(self, dout):  # dout: (B, C_out, L_out)
        w, xp = self.params["weight"], self.xp
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for i, t in enumerate(self.taps):
            dw[:, :, i] = np.einsum("bol,bcl->oc", dout, xp[:, :, t])
            dxp[:, :, t] += np.einsum("bol,oc->bcl", dout, w[:, :, i])
        self.grads = {"weight": dw, "bias": dout.sum(axis=(0, 2))}
        return dxp[:, :, self.p : xp.shape[2] - self.p]  # (B, C_in, L): drop the padding


class Conv2d(Layer):
    """``(B, C_in, H, W)`` -> ``(B, C_out, H_out, W_out)``, H_out = floor((H + 2P - K) / S) + 1."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None) -> None:
        super().__init__()
        rng = rng or np.random.default_rng()
        k = kernel_size
        fan_in = in_channels * k * k
        self.params = {
            "weight": _uniform(rng, fan_in, (out_channels, in_channels, k, k)),
            "bias": _uniform(rng, fan_in, (out_channels,)),
        }
        self.k, self.s, self.p = kernel_size, stride, padding

    def forward(self, x):
        p = self.p
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # (B, C_in, H + 2P, W + 2P)
        _, self.rows = _taps(xp.shape[2], self.k, self.s)
        _, self.cols = _taps(xp.shape[3], self.k, self.s)
        w, b = self.params["weight"], self.params["bias"]
        out = b[None, :, None, None]
        for i, r in enumerate(self.rows):
            for j, c in enumerate(self.cols):
                # (B, C_in, H_out, W_out) pixels under tap (i, j), mixed over channels by w[:, :, i, j] (C_out, C_in)
                out = out + np.einsum("bchw,oc->bohw", xp[:, :, r, c], w[:, :, i, j])
        self.xp = xp
        return out  # (B, C_out, H_out, W_out)

    def backward(self, dout):  # dout: (B, C_out, H_out, W_out)
        w, xp, p = self.params["weight"], self.xp, self.p
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for i, r in enumerate(self.rows):
            for j, c in enumerate(self.cols):
                dw[:, :, i, j] = np.einsum("bohw,bchw->oc", dout, xp[:, :, r, c])
                dxp[:, :, r, c] += np.einsum("bohw,oc->bchw", dout, w[:, :, i, j])  # each tap sends its share back
        self.grads = {"weight": dw, "bias": dout.sum(axis=(0, 2, 3))}
        return dxp[:, :, p : xp.shape[2] - p, p : xp.shape[3] - p]  # (B, C_in, H, W)


class _Pool2d(Layer):
    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        super().__init__()
        self.k, self.s = kernel_size, stride or kernel_size

    def _windows(self, x):
        """(K*K, B, C, H_out, W_out): every pixel of every pooling window, tap by tap."""
        self.shape = x.shape
        _, self.rows = _taps(x.shape[2], self.k, self.s)
        _, self.cols = _taps(x.shape[3], self.k, self.s)
        self.slices = [(r, c) for r in self.rows for c in self.cols]
        return np.stack([x[:, :, r, c] for r, c in self.slices])


class MaxPool2d(_Pool2d):
    """``(B, C, H, W)`` -> ``(B, C, H_out, W_out)``: the largest pixel of each window; no padding."""

    def forward(self, x):
        windows = self._windows(x)  # (K*K, B, C, H_out, W_out)
        self.argmax = windows.argmax(axis=0)  # which tap won; the first one on ties, as in PyTorch
        return windows.max(axis=0)

    def backward(self, dout):
        dx = np.zeros(self.shape)
        for t, (r, c) in enumerate(self.slices):
            dx[:, :, r, c] += dout * (self.argmax == t)  # only the winning pixel gets the gradient
        return dx


class AvgPool2d(_Pool2d):
    """``(B, C, H, W)`` -> ``(B, C, H_out, W_out)``: the mean of each window; no padding."""

    def forward(self, x):
        return self._windows(x).mean(axis=0)

    def backward(self, dout):
        dx = np.zeros(self.shape)
        for r, c in self.slices:
            dx[:, :, r, c] += dout / (self.k * self.k)  # every pixel of the window gets an equal share
        return dx


class Flatten(Layer):
    """``(B, C, H, W)`` -> ``(B, C*H*W)``."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self.shape)


class ReLU(Layer):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask  # d relu(x)/dx = 1 where x > 0, else 0


class Tanh(Layer):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout):
        return dout * (1.0 - self.y**2)  # d tanh(x)/dx = 1 - tanh(x)^2


class Linear(Layer):
    """``(B, in)`` -> ``(B, out)``: y = x W^T + b."""

    def __init__(self, in_features: int, out_features: int, rng=None) -> None:
        super().__init__()
        rng = rng or np.random.default_rng()
        self.params = {
            "weight": _uniform(rng, in_features, (out_features, in_features)),
            "bias": _uniform(rng, in_features, (out_features,)),
        }

    def forward(self, x):
        self.x = x  # (B, in)
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, dout):  # dout: (B, out)
        self.grads = {"weight": dout.T @ self.x, "bias": dout.sum(axis=0)}
        return dout @ self.params["weight"]  # (B, in)

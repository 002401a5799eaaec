"""Shift equivariance and invariance of layers, measured on real digits.

``f`` is shift-equivariant when shifting the input shifts the output: ``f(shift(x)) = shift(f(x))``, and
shift-invariant when the output does not move at all: ``f(shift(x)) = f(x)``. With circular shifts
(``torch.roll``), a stride-1 convolution with circular padding, adding a constant and a pointwise ReLU are
exactly equivariant. A pooling layer of stride ``s > 1`` is equivariant only to shifts by multiples of ``s``
(the output then moves by ``shift / s``); for other shifts no output shift reproduces it. A CNN built from all
of them is therefore not shift-invariant in general: moving a digit by one pixel changes its logits.

    python -m dlmnist.reference.shift                  # the measurements on 256 test digits
    python -m dlmnist.reference.shift --ckpt best.ckpt  # and how often a trained classifier changes its mind
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

Fn = Callable[[torch.Tensor], torch.Tensor]


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Circular shift of the last two dimensions: pixels leaving one edge come back at the other."""
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@torch.no_grad()
def equivariance_error(f: Fn, x: torch.Tensor, dy: int = 1, dx: int = 1, factor: int = 1) -> float:
    """``||f(shift(x)) - shift(f(x))|| / ||f(x)||`` for an ``f`` that downsamples by ``factor``.

    The output is compared with ``f(x)`` shifted by ``(dy, dx) / factor``; when that is not a whole number of
    pixels, with the nearest whole shifts (floor and ceil), and the smallest error is returned.
    """
    y, ys = f(x), f(shift(x, dy, dx))
    cand_y = {math.floor(dy / factor), math.ceil(dy / factor)}
    cand_x = {math.floor(dx / factor), math.ceil(dx / factor)}
    return min(_rel(ys, shift(y, a, b)) for a in cand_y for b in cand_x)


@torch.no_grad()
def invariance_error(f: Fn, x: torch.Tensor, dy: int = 1, dx: int = 1) -> float:
    """``||f(shift(x)) - f(x)|| / ||f(x)||``: 0 for a shift-invariant f."""
    return _rel(f(shift(x, dy, dx)), f(x))


def small_cnn(seed: int = 0) -> nn.Sequential:
    """Circular-padded convs, ReLU, stride-2 max pooling, then a fully connected layer (random weights)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2, padding_mode="circular"),  # (B, 8, 28, 28)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 8, 14, 14)
        nn.Conv2d(8, 16, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 16, 7, 7)
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),  # (B, 10) logits
    ).eval()


def measure(x: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Every property of the module docstring, measured on the images ``x`` (B, 1, H, W)."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 8, 5, padding=2, padding_mode="circular").eval()
    pool = nn.MaxPool2d(2)
    cnn = small_cnn(seed)
    return {
        "conv (circular padding), shift 1: equivariance error": equivariance_error(conv, x),
        "add a constant, shift 1: equivariance error": equivariance_error(lambda t: t + 0.5, x),
        "ReLU, shift 1: equivariance error": equivariance_error(torch.relu, x - 0.5),
        "max pool 2, shift 2: equivariance error": equivariance_error(pool, x, 2, 2, factor=2),
        "max pool 2, shift 1: equivariance error": equivariance_error(pool, x, 1, 1, factor=2),
        "CNN logits, shift 1: invariance error": invariance_error(cnn, x),
        "CNN features (before Flatten), shift 4 = its stride: equivariance error": equivariance_error(
            cnn[:-2], x, 4, 4, factor=4
        ),
    }


@torch.no_grad()
def prediction_changes(model: Fn, x: torch.Tensor, shifts: Sequence[int] = (1, 2, 3)) -> dict[int, float]:
    """Share of the images whose predicted class changes when shifted by ``d`` pixels right and down, per ``d``."""
    pred = model(x).argmax(dim=1)
    return {d: float((model(shift(x, d, d)).argmax(dim=1) != pred).float().mean()) for d in shifts}


def real_digits(data_dir: str | None = None, n: int = 256) -> torch.Tensor:
    """The first ``n`` MNIST test digits as ``(n, 1, 28, 28)`` floats in [0, 1]."""
    from dlmnist.data.idx import read_idx
    from dlmnist.data.sources import TEST_IMAGES, ensure_files

    folder = ensure_files(data_dir, "mnist", download=False)
    return read_idx(folder / TEST_IMAGES)[:n].unsqueeze(1).float() / 255.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Shift equivariance of layers, measured on MNIST test digits.")
    parser.add_argument("--data_dir", default=None, help="default: $DLMNIST_DATA, else a per-user cache folder")
    parser.add_argument("-n", type=int, default=256, help="number of test digits")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random weights")
    parser.add_argument("--ckpt", help="a trained classifier's checkpoint: how often its prediction changes")
    args = parser.parse_args(argv)
    x = real_digits(args.data_dir, args.n)
    for name, value in measure(x, args.seed).items():
        print(f"{name:<72} {value:.2e}")
    if args.ckpt:
        from dlmnist.data.sources import MNIST_MEAN, MNIST_STD
        from dlmnist.models import Classifier

        model = Classifier.load_from_checkpoint(args.ckpt, map_location="cpu").eval()
        for d, share in prediction_changes(model, (x - MNIST_MEAN) / MNIST_STD).items():  # as the data module
            print(f"trained classifier, shift {d}: predicted class changes for {share:.1%} of the digits")


if __name__ == "__main__":
    main()

"""Sequences of handwritten digits: ``length`` MNIST images side by side, labelled by their digits in a new order.

:func:`digit_sequences` turns a batch of images into a batch of sequences, so the sequence models train on the
in-memory MNIST batches of :class:`~dlmnist.data.MNISTDataModule` unchanged: each epoch's shuffle gives new
sequences, and validation and test sequences are made of validation and test images only.
"""

from __future__ import annotations

from typing import Literal

import torch

Order = Literal["reversed", "sorted", "same"]


def target_order(labels: torch.Tensor, order: str) -> torch.Tensor:
    """The labels ``(N, L)`` of the digits as placed, rewritten as the target: ``reversed``, ``sorted`` or ``same``."""
    if order == "reversed":
        return labels.flip(-1)
    if order == "sorted":
        return labels.sort(dim=-1).values
    if order == "same":
        return labels
    raise ValueError(f"order must be reversed, sorted or same, got {order!r}")


def digit_sequences(
    images: torch.Tensor, labels: torch.Tensor, length: int, order: str = "reversed"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Consecutive groups of ``length`` images ``(B, C, H, W)`` placed left to right as ``(B // length, C, H,
    length * W)``; returns those wide images, the targets ``(B // length, length)`` (see :func:`target_order`) and
    the labels as placed. The last ``B % length`` images are left out."""
    if length < 1:
        raise ValueError(f"length must be a positive integer, got {length}")
    n = len(images) // length
    b, c, h, w = images.shape
    x = images[: n * length].view(n, length, c, h, w).permute(0, 2, 3, 1, 4).reshape(n, c, h, length * w)
    placed = labels[: n * length].view(n, length)
    return x, target_order(placed, order), placed


def split_digits(x: torch.Tensor, width: int = 28) -> torch.Tensor:
    """Wide images ``(N, C, H, L * width)`` -> their ``L`` digit images ``(N, L, C, H, width)``, left to right."""
    n, c, h, w = x.shape
    if w % width:
        raise ValueError(f"image width {w} is not a multiple of the digit width {width}")
    return x.view(n, c, h, w // width, width).permute(0, 3, 1, 2, 4)

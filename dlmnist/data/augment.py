"""Batch-level random affine augmentation: every image of a batch gets its own translation, rotation and scale,
applied to the whole batch at once on the batch's device (torch's ``affine_grid`` + ``grid_sample``).

The parameters of a batch come from a generator seeded by (seed, epoch, batch, process), so a resumed run
draws exactly what the uninterrupted run drew, and the processes of a DDP run draw different parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlmnist.utils.checks import check, closed_range

Shift = closed_range("Shift", 0.0, 14.0, "pixels")
Rotation = closed_range("Rotation", 0.0, 180.0, "degrees")
Scale = closed_range("Scale", 0.0, 0.5, "relative size")


@dataclass(frozen=True)
class Augment:
    """Random affine transform of training images (validation, test and predict batches are never augmented).

    Args:
        translate: largest shift in pixels along each axis (uniform in [-translate, translate]); 0 to 14.
        rotate: largest rotation in degrees (uniform in [-rotate, rotate]); 0 to 180.
        scale: largest relative change of size (uniform factor in [1 - scale, 1 + scale]); 0 to 0.5.
    """

    translate: Shift = 2.0
    rotate: Rotation = 0.0
    scale: Scale = 0.0

    def __post_init__(self) -> None:
        check(Shift, **{"augment.translate": self.translate})
        check(Rotation, **{"augment.rotate": self.rotate})
        check(Scale, **{"augment.scale": self.scale})

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """``x`` (B, C, H, W) transformed; pixels outside the image repeat the border (the background)."""
        b, _, h, w = x.shape
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(b, 4, generator=g, dtype=torch.float64) * 2 - 1  # (B, 4) in [-1, 1]
        angle = u[:, 0] * math.radians(self.rotate)
        factor = 1 + u[:, 1] * self.scale
        shift = u[:, 2:] * self.translate * torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64)  # in [-1, 1] units
        cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
        theta = torch.stack([torch.stack([cos, -sin, -shift[:, 0]], 1), torch.stack([sin, cos, -shift[:, 1]], 1)], 1)
        grid = affine_grid(theta.to(x.device, x.dtype), h, w)  # (B, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` (B, h, w, 2) as one einsum over the pixel centres.

    The same sampling grid to float rounding (tested); torch's version multiplies a (B, h*w, 3) base grid batch by
    batch and took most of the augmentation's time on a CPU (about 8x the einsum for a batch of 256 MNIST images).
    """
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1  # pixel centres in [-1, 1]
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    base = torch.stack([xs.expand(h, w), ys.view(h, 1).expand(h, w), torch.ones_like(xs).expand(h, w)], -1)  # (h, w, 3)
    return torch.einsum("hwk,bik->bhwi", base, theta)


def batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """One seed per (seed, epoch, batch, process), the same in every Python process."""
    out = 0
    for part in (seed, epoch, batch, rank):
        out = (out * 1_000_003 + part) % (2**63 - 1)
    return out

"""Receptive field of a conv stack, by walking its real layers (to be unified with the learning tools' summarize)."""

from __future__ import annotations

import torch.nn as nn
from torch.nn.modules.utils import _pair

SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def receptive_field(module: nn.Module) -> tuple[int, int] | None:
    """``(r, j)`` of the last conv/pool layer of ``module`` (its layers taken in registration order, as in a
    sequential stack): each output pixel sees an ``r x r`` input window, neighbouring outputs are ``j`` pixels
    apart. ``r_out = r_in + (k - 1) * d * j_in`` and ``j_out = j_in * s``. None when there is no such layer."""
    r, j, seen = 1, 1, False
    for m in module.modules():
        if isinstance(m, SPATIAL):
            k, s = _pair(m.kernel_size)[0], _pair(m.stride or m.kernel_size)[0]
            d = _pair(getattr(m, "dilation", 1))[0]
            r, j, seen = r + (k - 1) * d * j, j * s, True
    return (r, j) if seen else None

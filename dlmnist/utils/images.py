"""Images as users hold them (uint8 or [0, 1] float tensors or arrays, PIL images) as pixels (N, 1, H, W) in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_pixels(images: Any) -> torch.Tensor:
    """``images`` as a float32 tensor ``(N, 1, H, W)`` of pixels in [0, 1].

    Accepts a tensor or NumPy array of shape ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``, either uint8 (0-255,
    as in the MNIST files) or float in [0, 1], and a PIL image or a list of them (converted to grey levels).
    Uint8 pixels are divided by 255 exactly as the data module does.
    """
    if isinstance(images, (list, tuple)) or _is_pil(images):
        items = images if isinstance(images, (list, tuple)) else [images]
        if not items:
            raise ValueError("no images given")
        images = np.stack([np.asarray(im.convert("L")) if _is_pil(im) else np.asarray(im) for im in items])
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a tensor, a NumPy array or PIL images, got {type(images).__name__}")
    if x.dim() == 2:
        x = x[None]
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 (0-255) or float (0-1), got {x.dtype}")
    x = x.float()
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"float images must hold pixels in [0, 1], got values from {x.min().item():g} to {x.max().item():g} "
            "(pass uint8 for 0-255)"
        )
    return x


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.")

"""Vision Transformer encoder (Dosovitskiy et al., 2021): patches -> tokens -> transformer blocks -> features."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn as nn

from dlmnist.nn.self_attention import MultiHeadSelfAttention
from dlmnist.utils.checks import Fraction, PositiveInt, check
from dlmnist.utils.init_config import RemembersInit

Pool = Literal["cls", "mean"]


class ConvStem(nn.Sequential):
    """``(B, C, H, W)`` -> ``(B, channels[-1], H, W)``: 3x3 convolutions (stride 1, padding 1), each with batch norm
    and GELU. In front of the patch embedding it makes the ViT a hybrid (Dosovitskiy et al., 2021, section 3.1;
    Xiao et al., 2021): tokens are made from local features rather than from raw pixels."""

    def __init__(self, channels: list[int], in_channels: int = 1) -> None:
        check(PositiveInt, **{"stem channels": channels})
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]
        super().__init__(*layers)


class PatchEmbedding(nn.Module):
    """Image ``(B, C, H, W)`` -> ``(B, (H/p)*(W/p), dim)``: each p x p patch flattened and mapped linearly to ``dim``.

    A convolution with kernel = stride = p is exactly that linear map applied to every non-overlapping patch.
    """

    def __init__(self, patch_size: int, dim: int, in_channels: int = 1, image_size: int = 28) -> None:
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            divisors = [d for d in range(1, image_size + 1) if image_size % d == 0]
            raise ValueError(f"patch_size must divide the image size {image_size} ({divisors}), got {patch_size}")
        self.num_patches = (image_size // patch_size) ** 2
        self.grid = image_size // patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, dim, H/p, W/p) -> (B, n_patches, dim)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attention(norm(x))``, then ``x + MLP(norm(x))``; returns (x, attention weights)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        a, weights = self.attn(self.norm1(x), mask)  # (B, n, dim), (B, heads, n, n); mask: (n, n) keys seen
        x = x + a
        return x + self.mlp(self.norm2(x)), weights


class VisionTransformer(RemembersInit, nn.Module):
    """Image ``(B, C, H, W)`` -> feature vector ``(B, dim)``; ``latent_dim`` = ``dim``, so a Classifier can take it.

    Args:
        patch_size: side of the square patches; must divide ``image_size``.
        dim: model width (token size).
        depth: number of transformer blocks.
        heads: attention heads per block (``dim`` must be a multiple).
        mlp_dim: hidden width of each block's MLP.
        dropout: dropout in attention output, MLPs and on the embedded tokens.
        pool: ``cls`` (a learned class token's final state) or ``mean`` (mean over the patch tokens).
        in_channels: channels of the input image.
        image_size: height = width of the input image.
        stem: channels of a convolutional stem before the patch embedding (:class:`ConvStem`; ``[]``: none, the
            patches are raw pixels).
    """

    def __init__(
        self,
        patch_size: PositiveInt = 4,
        dim: PositiveInt = 64,
        depth: PositiveInt = 4,
        heads: PositiveInt = 4,
        mlp_dim: PositiveInt = 128,
        dropout: Fraction = 0.1,
        pool: Pool = "cls",
        in_channels: int = 1,
        image_size: int = 28,
        stem: list[PositiveInt] = [],  # noqa: B006
    ) -> None:
        super().__init__()
        check(PositiveInt, dim=dim, depth=depth, heads=heads, mlp_dim=mlp_dim)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        check(Pool, pool=pool)
        check(Fraction, dropout=dropout)
        self.stem = ConvStem(stem, in_channels)
        self.patches = PatchEmbedding(patch_size, dim, stem[-1] if stem else in_channels, image_size)
        self.pool = pool
        n_tokens = self.patches.num_patches + (pool == "cls")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos = nn.Parameter(torch.randn(1, n_tokens, dim) * 0.02)  # learned position embeddings
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.latent_dim = dim

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patches(self.stem(x))  # (B, n_patches, dim)
        if self.cls_token is not None:
            t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)  # (B, 1 + n_patches, dim)
        return self.drop(t + self.pos)

    def _pool(self, t: torch.Tensor) -> torch.Tensor:
        t = self.norm(t)  # (B, n, dim)
        return t[:, 0] if self.pool == "cls" else t.mean(dim=1)  # (B, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self._tokens(x)
        for block in self.blocks:
            t, _ = block(t)
        return self._pool(t)  # (B, dim)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every block for images ``x``: a list of ``depth`` tensors ``(B, heads, n, n)``.

        Token 0 is the class token when ``pool == 'cls'``; the patch tokens follow in row-major order.
        """
        t, maps = self._tokens(x), []
        for block in self.blocks:
            t, w = block(t)
            maps.append(w)
        return maps

"""Scaled dot-product attention and the multi-head self-attention layer of the ViT.

``dlmnist.reference.attention_by_hand`` writes the same self-attention once in NumPy and once in PyTorch, step by step.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d_k)) v`` for q, k (..., n, d_k) and v (..., n, d_v); returns (output, weights).

    ``mask`` (n, n), boolean: where False, a query does not see that key (its weight is 0)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., n, n)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # (..., n, n)
    return weights @ v, weights  # (..., n, d_v), (..., n, n)


class MultiHeadSelfAttention(nn.Module):
    """``heads`` self-attentions of width ``dim // heads`` side by side, concatenated and projected back to ``dim``.

    ``forward(x, mask=None)`` returns the output ``(B, n, dim)`` and the attention weights ``(B, heads, n, n)``.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)  # W_q, W_k, W_v of every head in one matrix
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, dim = x.shape  # (B, n, dim)
        qkv = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, heads, n, d_k)
        out, weights = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask)  # (B, h, n, d_k), (B, h, n, n)
        out = out.transpose(1, 2).reshape(b, n, dim)  # heads concatenated: (B, n, dim)
        return self.drop(self.proj(out)), weights

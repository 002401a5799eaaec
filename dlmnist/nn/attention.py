"""Scaled dot-product self-attention, written once in NumPy and once in PyTorch, and multi-head attention.

For one sequence of ``n`` tokens, each a ``d_in`` vector (rows of ``x``):

    queries  Q = x W_q                      # (n, d_in) @ (d_in, d_k) -> (n, d_k)
    keys     K = x W_k                      # (n, d_in) @ (d_in, d_k) -> (n, d_k)
    values   V = x W_v                      # (n, d_in) @ (d_in, d_v) -> (n, d_v)
    scores   S = Q K^T / sqrt(d_k)          # (n, d_k) @ (d_k, n)     -> (n, n): row i = query i vs every key
    weights  A = softmax(S) along each row  # (n, n), every row sums to 1
    output   O = A V                        # (n, n) @ (n, d_v)       -> (n, d_v): row i = weighted mean of values

Dividing by sqrt(d_k) keeps the scores' variance near 1 when the entries of Q and K have variance 1,
so the softmax does not saturate (Vaswani et al., 2017). The PyTorch version accepts any leading
batch dimensions, e.g. ``(B, heads, n, d_k)``, which is how the multi-head layer below calls it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn


def softmax_numpy(s: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(s - s.max(axis=axis, keepdims=True))  # subtracting the row maximum avoids overflow
    return e / e.sum(axis=axis, keepdims=True)


def self_attention_numpy(
    x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Self-attention of one sequence ``x`` (n, d_in); returns the output (n, d_v) and the weights (n, n)."""
    q = x @ w_q  # (n, d_k)
    k = x @ w_k  # (n, d_k)
    v = x @ w_v  # (n, d_v)
    scores = q @ k.T / np.sqrt(q.shape[-1])  # (n, n)
    weights = softmax_numpy(scores, axis=-1)  # (n, n), rows sum to 1
    return weights @ v, weights  # (n, d_v), (n, n)


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d_k)) v`` for q, k (..., n, d_k) and v (..., n, d_v); returns (output, weights)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., n, n)
    weights = scores.softmax(dim=-1)  # (..., n, n)
    return weights @ v, weights  # (..., n, d_v), (..., n, n)


def self_attention_torch(
    x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch twin of :func:`self_attention_numpy`: x (..., n, d_in) -> output (..., n, d_v), weights (..., n, n)."""
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)  # Q, K (..., n, d_k); V (..., n, d_v)


class MultiHeadSelfAttention(nn.Module):
    """``heads`` self-attentions of width ``dim // heads`` side by side, concatenated and projected back to ``dim``.

    ``forward`` returns the output ``(B, n, dim)`` and the attention weights ``(B, heads, n, n)``.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)  # W_q, W_k, W_v of every head in one matrix
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, dim = x.shape  # (B, n, dim)
        qkv = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, heads, n, d_k)
        out, weights = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, n, d_k), (B, heads, n, n)
        out = out.transpose(1, 2).reshape(b, n, dim)  # heads concatenated: (B, n, dim)
        return self.drop(self.proj(out)), weights

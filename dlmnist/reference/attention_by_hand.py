"""Scaled dot-product self-attention written once in NumPy and once in PyTorch, for reading (the ViT runs
``dlmnist.nn.self_attention``).

For one sequence of ``n`` tokens, each a ``d_in`` vector (rows of ``x``):

    queries  Q = x W_q                      # (n, d_in) @ (d_in, d_k) -> (n, d_k)
    keys     K = x W_k                      # (n, d_in) @ (d_in, d_k) -> (n, d_k)
    values   V = x W_v                      # (n, d_in) @ (d_in, d_v) -> (n, d_v)
    scores   S = Q K^T / sqrt(d_k)          # (n, d_k) @ (d_k, n)     -> (n, n): row i = query i vs every key
    weights  A = softmax(S) along each row  # (n, n), every row sums to 1
    output   O = A V                        # (n, n) @ (n, d_v)       -> (n, d_v): row i = weighted mean of values

Dividing by sqrt(d_k) keeps the scores' variance near 1 when the entries of Q and K have variance 1,
so the softmax does not saturate (Vaswani et al., 2017). The PyTorch version accepts any leading
batch dimensions, e.g. ``(B, heads, n, d_k)``, which is how the ViT's multi-head layer calls it.
"""

from __future__ import annotations

import numpy as np
import torch

from dlmnist.nn.self_attention import scaled_dot_product_attention


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


def self_attention_torch(
    x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch twin of :func:`self_attention_numpy`: x (..., n, d_in) -> output (..., n, d_v), weights (..., n, n)."""
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)  # Q, K (..., n, d_k); V (..., n, d_v)

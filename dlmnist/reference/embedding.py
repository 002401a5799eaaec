"""``nn.Embedding`` by hand: a lookup table of ``num_embeddings`` rows, each a trainable ``embedding_dim`` vector.

An index ``i`` picks row ``i`` of the weight ``W`` (num_embeddings, embedding_dim). The same thing as a matrix
product: the one-hot row vector ``e_i`` times ``W`` is row ``i``; so an input of indices with any shape
``(*S)`` gives ``(*S, embedding_dim)``, e.g. ``(batch, seq_length)`` -> ``(batch, seq_length, embedding_dim)``.

Backward: the gradient of a row is the sum of the output gradients of every position that picked it (an index
that occurs twice gets both contributions; a row nobody picked gets zero). ``one_hot @ W`` gives it through
autograd of a matrix product; :class:`EmbeddingLookup` writes it out as a scatter-add (``index_add_``), which is
what ``nn.Embedding`` does without building the one-hot matrix. ``tests/test_reference.py`` checks both against
``nn.Embedding``: same outputs, same weight gradients.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingLookup(torch.autograd.Function):
    """Forward ``W[idx]``; backward: the output gradients summed into the rows they came from."""

    @staticmethod
    def forward(ctx, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx)
        ctx.num_embeddings = weight.shape[0]
        return weight[idx]  # (*S, D): an index lookup copies rows, no arithmetic

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (idx,) = ctx.saved_tensors
        d = grad_out.shape[-1]
        grad_w = grad_out.new_zeros(ctx.num_embeddings, d)
        grad_w.index_add_(0, idx.reshape(-1), grad_out.reshape(-1, d))  # row idx[k] += grad_out[k]
        return None, grad_w  # indices get no gradient


class Embedding(nn.Module):
    """A reference ``nn.Embedding(num_embeddings, embedding_dim)``: ``forward(idx)`` of integer indices ``(*S)``
    returns ``(*S, embedding_dim)``. ``method``: ``lookup`` (index the rows, backward by hand) or ``one_hot``
    (one-hot vectors times the weight, backward by autograd)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, method: Literal["lookup", "one_hot"] = "lookup"):
        super().__init__()
        if method not in ("lookup", "one_hot"):
            raise ValueError(f"method must be lookup or one_hot, got {method!r}")
        self.method = method
        self.weight = nn.Parameter(torch.randn(num_embeddings, embedding_dim))  # N(0, 1), as nn.Embedding

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"indices must be an integer tensor, got {idx.dtype}")
        if self.method == "one_hot":
            return F.one_hot(idx.long(), self.weight.shape[0]).to(self.weight.dtype) @ self.weight  # (*S, N) @ (N, D)
        return EmbeddingLookup.apply(idx.long(), self.weight)

"""Batches sliced from in-memory tensors: no per-item indexing, no collate, no worker processes."""

from __future__ import annotations

import math

import torch


class EpochShuffle:
    """Seeded per-epoch permutation. Lightning calls ``set_epoch`` at the start of every epoch,
    so the order of epoch ``e`` depends only on ``seed + e`` and survives a resume."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g)


class TensorBatches:
    """Yield ``(x[idx], y[idx])`` batches from tensors held in memory.

    Under a distributed strategy each of ``world_size`` processes takes every ``world_size``-th
    index of the (shared, seeded) order, so shards are disjoint and their union is the whole set;
    every process yields the same number of batches (shard sizes differ by at most one).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        assert len(x) == len(y), "images and labels differ in length"
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.sampler = EpochShuffle(seed) if shuffle else None  # Lightning calls sampler.set_epoch(e)
        self.batch_sampler = None  # read by Lightning's dataloader checks
        self.rank, self.world_size = rank, world_size

    def _shard_size(self) -> int:
        return math.ceil(len(self.x) / self.world_size)

    def __len__(self) -> int:
        return math.ceil(self._shard_size() / self.batch_size)

    def indices(self) -> torch.Tensor:
        order = self.sampler.permutation(len(self.x)) if self.sampler else torch.arange(len(self.x))
        return order[self.rank :: self.world_size]

    def __iter__(self):
        idx = self.indices()
        # equal batch counts on every rank; batch sizes differ by at most one within an epoch
        for chunk in torch.tensor_split(idx, len(self)) if len(self) else ():
            yield self.x[chunk], self.y[chunk]

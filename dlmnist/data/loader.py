"""Batches sliced from in-memory tensors: no per-item indexing, no collate, no worker processes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional

import torch

from dlmnist.data.augment import batch_seed


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

    Stateful for an exact mid-epoch resume: ``state_dict()`` holds the epoch and how many of its
    batches were handed out (Lightning stores it in every checkpoint of a fit); after
    ``load_state_dict`` the next pass over that epoch skips those batches. Lightning does not
    prefetch from a loader with a length, so "handed out" is "trained on" whenever a checkpoint
    is written by a callback; the exception checkpoint corrects it with ``rewind``.
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
        augment: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
        convert: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ) -> None:
        assert len(x) == len(y), "images and labels differ in length"
        self.x, self.y = x, y
        self.seed, self.augment = seed, augment  # augment(images, seed of (seed, epoch, batch, rank))
        self.convert = convert  # e.g. uint8 -> normalised float, per batch, where x lives (data on the GPU)
        self.batch_size = batch_size
        self.sampler = EpochShuffle(seed) if shuffle else None  # Lightning calls sampler.set_epoch(e)
        self.batch_sampler = None  # read by Lightning's dataloader checks
        self.rank, self.world_size = rank, world_size
        self._served = 0  # batches of the current pass handed out so far
        self._resume: tuple[int, int] | None = None  # (epoch, batches to skip) from load_state_dict

    def _shard_size(self) -> int:
        return math.ceil(len(self.x) / self.world_size)

    def __len__(self) -> int:
        return math.ceil(self._shard_size() / self.batch_size)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch if self.sampler else 0

    def indices(self) -> torch.Tensor:
        order = self.sampler.permutation(len(self.x)) if self.sampler else torch.arange(len(self.x))
        return order[self.rank :: self.world_size]

    def __iter__(self):
        # the body runs at the first next(), after Lightning's set_epoch for this epoch
        skip = 0
        if self._resume is not None:
            epoch, done = self._resume
            skip = done if epoch == self.epoch else 0
            self._resume = None
        self._served = skip
        idx = self.indices()
        # equal batch counts on every rank; batch sizes differ by at most one within an epoch
        chunks = torch.tensor_split(idx, len(self)) if len(self) else ()
        for chunk in chunks[skip:]:
            chunk = chunk.to(self.x.device)  # the order is drawn on the CPU; the data may live on a GPU
            x = self.x[chunk]
            if self.convert is not None:
                x = self.convert(x)
            if self.augment is not None:
                x = self.augment(x, batch_seed(self.seed, self.epoch, self._served, self.rank))
            self._served += 1
            yield x, self.y[chunk]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batches": self._served, "seed": self.sampler.seed if self.sampler else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(int(state["epoch"]))
        self._resume = (int(state["epoch"]), int(state["batches"]))

    def rewind(self, batches: int) -> None:
        """Count only ``batches`` of the current pass as done (a batch that failed is not done)."""
        self._served = min(self._served, batches)

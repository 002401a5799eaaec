"""MNISTDataModule: MNIST or Fashion-MNIST held in memory, seeded train/val split, N-label subsets."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Literal, Optional

import lightning as L
import torch

from dlmnist.data.augment import Augment, batch_seed
from dlmnist.data.folder import data_dir as data_dir_of
from dlmnist.data.idx import read_idx
from dlmnist.data.loader import TensorBatches
from dlmnist.data.sources import DATASETS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, ensure_files
from dlmnist.utils.checks import OpenUnitInterval, PositiveInt, check

Dataset = Literal["mnist", "fashion_mnist"]  # the keys of dlmnist.data.sources.DATASETS

NUM_TRAIN_FILES = 60000
# The splits this process made last, by everything they depend on (the files' size and modification time among it):
# a test after a fit, or the next run of a notebook, a sequential suite or a test session, takes its tensors from
# here instead of reading and converting the files again (about 0.35 s a setup on one core). The tensors are shared,
# so nothing may change them in place; the batches are new tensors. Two entries: about 440 MB of MNIST at most.
_SPLITS: OrderedDict[tuple, dict[str, torch.Tensor]] = OrderedDict()
CACHED_SPLITS = 2


class MNISTDataModule(L.LightningDataModule):
    """MNIST / Fashion-MNIST as in-memory tensors of shape (N, 1, 28, 28).

    Args:
        data_dir: folder holding ``<dataset>/`` with the four IDX files (fetched there if missing); by default
            ``$DLMNIST_DATA``, else a per-user cache folder (``~/.cache/dlmnist`` on Linux).
        dataset: ``mnist`` or ``fashion_mnist``.
        batch_size: training batch size (per process); see ``full_batch``.
        full_batch: train on the whole training split as one batch (full-batch gradient descent: one optimizer
            step per epoch); ``batch_size`` is then ignored. Mini-batch and stochastic (``batch_size: 1``)
            gradient descent are ``batch_size`` settings.
        eval_batch_size: batch size of validation, test and predict.
        val_fraction: share of the official training set held out for validation.
        normalize: standardise with the data set's mean/std; false gives pixels in [0, 1].
        train_subset: keep only this many labelled training examples (the test set stays full).
        val_subset: keep only this many validation examples, picked like ``train_subset`` from the validation
            split (so disjoint from the training images): a few-label run then chooses its checkpoint with no
            more labels than it trains on.
        subset_mode: ``first`` N of the split, or ``balanced`` (N/10 per class, seeded), for both subsets.
        exclude_classes: digits left out of training and validation (the test set keeps them), e.g. ``[9]``
            for anomaly detection: models can read them back as ``exclude_classes``.
        augment: random translation, rotation and scale of training batches (:class:`~dlmnist.data.augment.Augment`,
            e.g. ``augment: {translate: 2, rotate: 10, scale: 0.1}``); off when null. Seeded per (seed, epoch,
            batch, process); the first run writes ``figures/data__augmentation.png`` (a batch before and after).
        data_on_device: keep the images as uint8 on the trainer's device (a GPU) and slice and convert each batch
            there: no host-to-device copy per batch (on by default in ``configs/trainer/gpu.yaml``). The batches
            are the same, bit for bit, as those of the host path.
        seed: seeds the split, the subset and the per-epoch shuffling (seed + epoch); null (the default): the
            run's ``seed_everything`` on the command line (so ``--seed_everything=3`` alone varies everything), 42
            in Python.
        download: allow fetching missing files (torchvision, then the offline mirror).
    """

    def __init__(
        self,
        data_dir: Optional[str] = None,
        dataset: Dataset = "mnist",
        batch_size: PositiveInt = 256,
        eval_batch_size: PositiveInt = 1000,
        val_fraction: OpenUnitInterval = 0.2,
        normalize: bool = True,
        train_subset: Optional[PositiveInt] = None,
        val_subset: Optional[PositiveInt] = None,
        subset_mode: Literal["first", "balanced"] = "balanced",
        exclude_classes: list[int] = [],  # noqa: B006 (jsonargparse reads the default)
        augment: Optional[Augment] = None,
        data_on_device: bool = False,
        seed: Optional[int] = None,
        download: bool = True,
        full_batch: bool = False,
    ) -> None:
        super().__init__()
        check(Dataset, dataset=dataset)
        check(OpenUnitInterval, val_fraction=val_fraction)
        check(PositiveInt, batch_size=batch_size, eval_batch_size=eval_batch_size, train_subset=train_subset,
              val_subset=val_subset)
        n_val = round(NUM_TRAIN_FILES * val_fraction)
        subsets = [("train_subset", train_subset, "training", NUM_TRAIN_FILES - n_val),
                   ("val_subset", val_subset, "validation", n_val)]
        for name, n, split, size in subsets:
            if n is None:
                continue
            if n > size:
                raise ValueError(
                    f"{name}={n} is larger than the {split} split ({size} images with val_fraction={val_fraction})"
                )
            if subset_mode == "balanced" and n % 10:
                raise ValueError(f"{name}={n} with subset_mode=balanced must be a multiple of 10")
        if any(not 0 <= c <= 9 for c in exclude_classes) or len(set(exclude_classes)) >= 10:
            raise ValueError(f"exclude_classes must be some (not all) of the classes 0..9, got {exclude_classes}")
        if seed is None:  # the command line fills it with seed_everything (dlmnist.cli.app); in Python: 42
            seed = 42
        self.save_hyperparameters()
        self.augment = Augment(**augment) if isinstance(augment, dict) else augment  # a dict from a checkpoint
        self.exclude_classes = sorted(set(exclude_classes))
        self.spec = DATASETS[dataset]
        self.data_dir = data_dir_of(data_dir)
        self._loaded = False

    @property
    def folder(self) -> Path:
        return self.data_dir / self.spec.name

    def prepare_data(self) -> None:
        ensure_files(self.data_dir, self.hparams.dataset, download=self.hparams.download)

    def _to_float(self, images: torch.Tensor) -> torch.Tensor:
        x = images.unsqueeze(1).float().div_(255.0)  # (N, 1, 28, 28) in [0, 1]
        if self.hparams.normalize:
            x.sub_(self.spec.mean).div_(self.spec.std)
        return x

    def setup(self, stage: Optional[str] = None) -> None:
        if self._loaded:
            return
        ensure_files(self.data_dir, self.hparams.dataset, download=False)  # verified before parsing
        self._device_data = None
        if self.hparams.data_on_device:  # uint8 images and labels on the device; batches converted there
            split, raw = self._split()
            device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
            self._device_data = {name: (x.to(device), y.to(device)) for name, (x, y) in raw.items()}
        else:
            key = self._split_key()
            if key not in _SPLITS:
                _SPLITS[key] = self._split()[0]
                while len(_SPLITS) > CACHED_SPLITS:
                    _SPLITS.popitem(last=False)
            _SPLITS.move_to_end(key)
            split = _SPLITS[key]
        for name, tensor in split.items():  # train_x, train_y, val_x, val_y, train_indices, test_x, test_y
            setattr(self, name, tensor)
        self._loaded = True
        if stage in ("fit", None) and self.augment is not None:
            self._augmentation_figure()

    def _split_key(self) -> tuple:
        files = [self.folder / name for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)]
        stamps = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        h = self.hparams
        return (stamps, h.dataset, h.val_fraction, h.normalize, h.train_subset, h.val_subset, h.subset_mode,
                tuple(self.exclude_classes), h.seed)

    def _split(self) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """(the float tensors of the three splits, their uint8 images and labels for ``data_on_device``)."""
        images, labels = read_idx(self.folder / TRAIN_IMAGES), read_idx(self.folder / TRAIN_LABELS).long()
        if len(images) != len(labels):
            raise ValueError(f"{self.folder}: {len(images)} training images but {len(labels)} labels")
        n_train = len(images) - round(len(images) * self.hparams.val_fraction)
        if self.hparams.train_subset is not None and self.hparams.train_subset > n_train:
            raise ValueError(f"train_subset={self.hparams.train_subset} is larger than the training split ({n_train})")
        n_val = round(len(images) * self.hparams.val_fraction)
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.hparams.seed))
        val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
        if self.exclude_classes:
            excluded = torch.tensor(self.exclude_classes)
            val_idx = val_idx[~torch.isin(labels[val_idx], excluded)]
            train_idx = train_idx[~torch.isin(labels[train_idx], excluded)]
        if self.hparams.train_subset is not None:
            train_idx = self._subset(train_idx, labels[train_idx], self.hparams.train_subset, "train_subset", 1)
        if self.hparams.val_subset is not None:
            val_idx = self._subset(val_idx, labels[val_idx], self.hparams.val_subset, "val_subset", 2)
        # split the bytes, then convert each part: no float copy of the whole set (190 MB) at the peak
        test_images, test_y = read_idx(self.folder / TEST_IMAGES), read_idx(self.folder / TEST_LABELS).long()
        split = {"train_x": self._to_float(images[train_idx]), "train_y": labels[train_idx],
                 "val_x": self._to_float(images[val_idx]), "val_y": labels[val_idx],
                 "train_indices": train_idx,  # positions in the official training set
                 "test_x": self._to_float(test_images), "test_y": test_y}
        if not self.hparams.data_on_device:
            return split, {}
        raw = {"train": (images[train_idx], split["train_y"]), "val": (images[val_idx], split["val_y"]),
               "test": (test_images, test_y)}
        return split, raw

    def _augmentation_figure(self) -> None:
        trainer = self.trainer
        if trainer is None or not trainer.is_global_zero:
            return
        from dlmnist.utils.figures import log_figure, panels_figure  # matplotlib only when it draws

        x = self.train_x[:16]
        after = self.augment(x, batch_seed(self.hparams.seed, 0, 0, 0))  # the first batch's parameters
        panels = [("training images", self.denormalize(x)), ("augmented", self.denormalize(after))]
        log_figure(trainer, "data/augmentation", panels_figure(panels, ncols=16, side_by_side=False))

    def _subset(self, idx: torch.Tensor, labels: torch.Tensor, n: int, name: str, stream: int) -> torch.Tensor:
        """``n`` of the positions ``idx`` (labels ``labels``): the first, or n/10 per class drawn with seed + stream."""
        if self.hparams.subset_mode == "first":
            return idx[:n]
        g = torch.Generator().manual_seed(self.hparams.seed + stream)
        picks = []
        for c in range(10):
            members = idx[labels == c]
            if len(members) < n // 10:
                raise ValueError(f"{name}={n}: class {c} has only {len(members)} images in its split")
            picks.append(members[torch.randperm(len(members), generator=g)[: n // 10]])
        return torch.cat(picks).sort().values

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _batches(self, split: str, batch_size: int, shuffle: bool = False) -> TensorBatches:
        rank, world = self._rank_world()
        x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
        convert = None
        if self._device_data is not None:
            (x, y), convert = self._device_data[split], self._to_float
        return TensorBatches(x, y, batch_size, shuffle=shuffle, seed=self.hparams.seed, rank=rank, world_size=world,
                             augment=self.augment if split == "train" else None, convert=convert)

    def train_dataloader(self) -> TensorBatches:
        rank, world = self._rank_world()
        size = -(-len(self.train_x) // world) if self.hparams.full_batch else self.hparams.batch_size  # per process
        return self._batches("train", size, shuffle=True)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", self.hparams.eval_batch_size)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", self.hparams.eval_batch_size)

    def predict_dataloader(self) -> TensorBatches:
        return self._batches("test", self.hparams.eval_batch_size)

    @property
    def pixel_normalization(self) -> tuple[float, float]:
        """``(mean, std)`` the images are standardised with: pixels in [0, 1] -> ``(pixels - mean) / std``."""
        return (self.spec.mean, self.spec.std) if self.hparams.normalize else (0.0, 1.0)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to pixels in [0, 1] (for pictures)."""
        return (x * self.spec.std + self.spec.mean) if self.hparams.normalize else x

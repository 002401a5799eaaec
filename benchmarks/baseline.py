"""The usual recipe, as in the well-known PyTorch MNIST example: torchvision MNIST + DataLoader,
two 3x3 convs (32, 64), max-pool, dropout, FC 9216-128-10, Adadelta lr 1.0, StepLR gamma 0.7,
batch 64. Our own code, used only as the side-by-side reference of `make bench`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlmnist.data.sources import FILES, MNIST_MEAN, MNIST_STD


class ExampleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))  # (B, 64, 24, 24)
        x = self.dropout1(F.max_pool2d(x, 2)).flatten(1)  # (B, 9216)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)  # (B, 10) logits


def torchvision_root(mnist_folder: Path) -> Path:
    """A temporary root where torchvision's MNIST finds our verified raw files (symlinks, no copy)."""
    root = Path(tempfile.mkdtemp(prefix="dlmnist-bench-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        os.symlink(mnist_folder.resolve() / name, raw / name)
    return root


def torchvision_loader(root: Path, train: bool, batch_size: int, num_workers: int = 0, shuffle: bool = True):
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    ds = datasets.MNIST(str(root), train=train, download=False, transform=tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)


def recipe(root: Path, seed: int = 1):
    """(model, optimizer, scheduler, train loader) of the usual recipe."""
    torch.manual_seed(seed)
    model = ExampleNet()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    return model, opt, sched, torchvision_loader(root, True, 64)

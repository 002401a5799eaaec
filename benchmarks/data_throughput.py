"""`make bench`, part ``data``: images per second of the data module's training batches against torchvision's
MNIST and DataLoader (0 and 2 workers)."""

from __future__ import annotations

import time

from benchmarks.baseline import torchvision_loader, torchvision_root
from benchmarks.shared import DATA
from dlmnist.data import MNISTDataModule


def images_per_s(loader) -> float:
    n, t = 0, time.perf_counter()
    for x, _ in loader:
        n += len(x)
    return n / (time.perf_counter() - t)


def data_throughput(batch_size: int = 256) -> dict:
    dm = MNISTDataModule(data_dir=str(DATA), batch_size=batch_size)
    dm.prepare_data()
    dm.setup("fit")
    ours = max(images_per_s(dm.train_dataloader()) for _ in range(3))
    root = torchvision_root(DATA / "mnist")
    theirs = {w: images_per_s(torchvision_loader(root, True, batch_size, num_workers=w)) for w in (0, 2)}
    best = max(theirs.values())
    return {
        "data_ours_img_s": round(ours),
        "data_torchvision_img_s": {str(k): round(v) for k, v in theirs.items()},
        "data_throughput_ratio": round(ours / best, 1),
    }

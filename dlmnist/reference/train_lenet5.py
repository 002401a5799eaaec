"""Train the NumPy LeNet-5 (``dlmnist.reference``) on a small MNIST subset and report its test accuracy.

    python -m dlmnist.reference.train_lenet5 --train 1000 --test 1000 --epochs 15

No PyTorch in the loop: forward, backward and the SGD step are the NumPy code of ``dlmnist.reference``.
The training images are a seeded random sample of the 60,000; the test images the first ``--test`` of the
official 10,000. Pixels are standardised with MNIST's mean and std (``dlmnist.data.sources.MNIST_MEAN``, ``MNIST_STD``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from dlmnist.data.idx import read_idx
from dlmnist.data.sources import (
    MNIST_MEAN,
    MNIST_STD,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    ensure_files,
)
from dlmnist.reference.model import SGD, lenet5, softmax_cross_entropy


def load(data_dir: str, n_train: int, n_test: int, seed: int):
    folder = ensure_files(data_dir, "mnist", download=False)
    x_train, y_train = read_idx(folder / TRAIN_IMAGES).numpy(), read_idx(folder / TRAIN_LABELS).numpy()
    pick = np.random.default_rng(seed).choice(len(x_train), n_train, replace=False)  # before the float copy
    pixels = lambda x: x.astype(np.float64)[:, None] / 255.0  # noqa: E731
    x_train, y_train = pixels(x_train[pick]), y_train[pick].astype(np.int64)
    x_test = pixels(read_idx(folder / TEST_IMAGES).numpy()[:n_test])
    y_test = read_idx(folder / TEST_LABELS).numpy()[:n_test].astype(np.int64)
    standardise = lambda x: (x - MNIST_MEAN) / MNIST_STD  # noqa: E731
    return standardise(x_train), y_train, standardise(x_test), y_test  # (N, 1, 28, 28), (N,)


def accuracy(model, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    pred = np.concatenate([model.forward(x[i : i + batch]).argmax(axis=1) for i in range(0, len(x), batch)])
    return float((pred == y).mean())


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=1000, help="training images (seeded random sample)")
    parser.add_argument("--test", type=int, default=1000, help="test images (the first N of the test set)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="seeds the sample, the weights and the shuffling")
    parser.add_argument("--data_dir", default=None, help="default: $DLMNIST_DATA, else a per-user cache folder")
    args = parser.parse_args(argv)
    x_train, y_train, x_test, y_test = load(args.data_dir, args.train, args.test, args.seed)
    rng = np.random.default_rng(args.seed)
    model = lenet5(rng)
    opt = SGD(model, args.lr, args.momentum)
    print(f"NumPy LeNet-5, {model.num_parameters():,} parameters; {len(x_train)} training, {len(x_test)} test images")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, losses = rng.permutation(len(x_train)), []
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            loss, dlogits = softmax_cross_entropy(model.forward(x_train[idx]), y_train[idx])
            model.backward(dlogits)
            opt.step()
            losses.append(loss)
        print(
            f"epoch {epoch:2d}/{args.epochs}  train loss {np.mean(losses):.4f}  "
            f"train acc {accuracy(model, x_train, y_train):.4f}  test acc {accuracy(model, x_test, y_test):.4f}  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    result = {"train_acc": accuracy(model, x_train, y_train), "test_acc": accuracy(model, x_test, y_test)}
    print(f"final: train accuracy {result['train_acc']:.4f}, test accuracy {result['test_acc']:.4f}")
    return result


if __name__ == "__main__":
    main()

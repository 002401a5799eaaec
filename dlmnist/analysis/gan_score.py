"""``dlmnist gan-score --gan GAN.ckpt --classifier CNN.ckpt``: sample quality of a GAN with no download.

Scores ``--samples`` generated digits (default 10,000) under a classifier checkpoint of this package (e.g. a
configs/cnn.yaml run; inputs standardised with MNIST's mean and std), and the same number of real MNIST images under
the same classifier as the reference a generator that draws real digits would reach
(:mod:`dlmnist.sample_scores` computes the scores):

- ``classifier_score``: ``exp(mean_x KL(p(y|x) || p(y)))``, an Inception Score with the CNN in place of
  Inception: from 1 (every sample gets the same class distribution) to 10 (each sample is one confident digit and
  all ten digits are equally common);
- ``class_share``: the share of the samples the CNN calls each digit 0-9; ``min_class_share`` its smallest entry;
  ``class_coverage``: how many digits receive at least 1% of the samples (a collapsed generator covers few);
- ``fid``: the Fréchet distance between the CNN's features (its encoder's output) of the samples and of
  ``--samples`` MNIST test images (all 10,000 by default, else drawn with ``--seed``; 0 for identical feature
  statistics, lower is better);
- ``real_classifier_score``: the classifier score of those test images;
- ``real_fid``: the Fréchet distance between those test images and as many MNIST training images (drawn with
  ``--seed``): what a generator that returns training images scores, with the same number of images on each side
  as ``fid`` (the distance between finite sets is biased upwards, more so for fewer images). Test against
  training images rather than one half of the test set against the other: MNIST's first 5,000 test images are
  cleaner and easier than the last 5,000, and each half would hold half as many images as ``fid`` compares.

Comparable only between GANs scored by the same classifier checkpoint and number of samples. Written to
``classifier_score.json`` beside the GAN's checkpoints folder and printed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from dlmnist.data.idx import read_idx
from dlmnist.data.sources import TEST_IMAGES, TRAIN_IMAGES, ensure_files
from dlmnist.models import GAN, Classifier
from dlmnist.sample_scores import class_probabilities_score, scores
from dlmnist.utils.files import atomic_write_text

__all__ = ["class_probabilities_score", "gan_samples", "main", "mnist_pixels", "score"]

BATCH = 1000
MAX_SAMPLES = 10000  # the MNIST test set: fid compares as many real images as samples


def batches(x: torch.Tensor, size: int = BATCH) -> Iterator[torch.Tensor]:
    return (x[i : i + size] for i in range(0, len(x), size))


@torch.no_grad()
def gan_samples(gan: GAN, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples ``(n, 1, 28, 28)`` in [0, 1] of ``gan`` in eval mode, drawn in batches of 1000 after
    ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    gan.eval()
    return torch.cat([gan.sample(min(BATCH, n - i)) for i in range(0, n, BATCH)])


def mnist_pixels(data_dir: str | None, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` MNIST test images and ``n`` training images, ``(n, 1, 28, 28)`` in [0, 1], each drawn without
    replacement (``seed``; ``n = 10000``: the whole test set), from the data folder (``data_dir``, else the
    package's default: :func:`dlmnist.data.folder.data_dir`). Drawn rather than the first ``n``: MNIST's first
    5,000 test images are cleaner and easier than the last 5,000."""
    folder = ensure_files(data_dir, "mnist")
    g = torch.Generator().manual_seed(seed)
    pixels = []
    for name in (TEST_IMAGES, TRAIN_IMAGES):
        images = read_idx(folder / name)
        pixels.append(images[torch.randperm(len(images), generator=g)[:n]].unsqueeze(1).float() / 255)
    return pixels[0], pixels[1]


def score(gan: GAN, classifier: Classifier, test: torch.Tensor, train: torch.Tensor, seed: int = 0) -> dict:
    """Every number of ``dlmnist gan-score`` for ``len(test)`` samples of ``gan``; ``test`` and ``train``: as many
    real test and training images (pixels in [0, 1])."""
    samples = gan_samples(gan, len(test), seed)
    return scores(classifier, list(batches(test)), list(batches(samples)), list(batches(train)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist gan-score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="checkpoint of a configs/gan.yaml run")
    parser.add_argument("--classifier", required=True, help="checkpoint of a classifier run, e.g. configs/cnn.yaml")
    parser.add_argument("--samples", type=int, default=MAX_SAMPLES, help=f"2 to {MAX_SAMPLES} (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and of the real images drawn")
    parser.add_argument("--data_dir", default=None, help="data folder holding mnist/ (default: the package's)")
    args = parser.parse_args(argv)
    if not 2 <= args.samples <= MAX_SAMPLES:
        parser.error(f"--samples must be 2 to {MAX_SAMPLES} (the real images compared are MNIST test images)")
    gan = GAN.load_from_checkpoint(args.gan, map_location="cpu")
    clf = Classifier.load_from_checkpoint(args.classifier, map_location="cpu")
    test, train = mnist_pixels(args.data_dir, args.samples, args.seed)
    result = {**score(gan, clf, test, train, args.seed), "samples": args.samples, "classifier": str(args.classifier)}
    text = json.dumps(result, indent=2)
    atomic_write_text(Path(args.gan).resolve().parent.parent / "classifier_score.json", text + "\n")
    print(text)
    return 0

"""``dlmnist gan-score --gan GAN.ckpt --classifier CNN.ckpt``: sample quality of a GAN with no download.

The classifier score (an Inception Score with the package's own trained CNN in place of Inception):
``exp(mean_x KL(p(y|x) || p(y)))`` over ``--samples`` generated digits, from 1 (every sample gets the same class
distribution) to 10 (each sample is one confident digit and all ten digits are equally common), and the class
coverage: how many digits receive at least 1% of the samples (a collapsed generator covers few). Comparable only
between GANs scored by the same classifier checkpoint. Written to ``classifier_score.json`` beside the GAN's
checkpoints folder and printed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from dlmnist.data.sources import MNIST_MEAN, MNIST_STD
from dlmnist.models import GAN, Classifier
from dlmnist.utils.files import atomic_write_text


def class_probabilities_score(p: torch.Tensor) -> tuple[float, int]:
    """``(exp(mean KL(p(y|x) || p(y))), classes with >= 1% of the argmax votes)`` of probabilities ``(N, K)``."""
    p = p.double()
    marginal = p.mean(dim=0, keepdim=True)
    kl = (torch.xlogy(p, p) - torch.xlogy(p, marginal)).sum(dim=1)
    share = torch.bincount(p.argmax(dim=1), minlength=p.shape[1]).double() / len(p)
    return kl.mean().exp().item(), int((share >= 0.01).sum().item())


@torch.no_grad()
def classifier_score(gan: GAN, classifier: Classifier, n: int = 10000, seed: int = 0) -> tuple[float, int]:
    """The score of ``n`` samples of ``gan`` under ``classifier`` (inputs standardised as MNIST for it)."""
    torch.manual_seed(seed)
    gan.eval(), classifier.eval()
    probs = [
        classifier((gan.sample(min(1000, n - i)) - MNIST_MEAN) / MNIST_STD).softmax(dim=-1) for i in range(0, n, 1000)
    ]
    return class_probabilities_score(torch.cat(probs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist gan-score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan", required=True, help="checkpoint of a configs/gan.yaml run")
    parser.add_argument("--classifier", required=True, help="checkpoint of a classifier run, e.g. configs/cnn.yaml")
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    gan = GAN.load_from_checkpoint(args.gan, map_location="cpu")
    clf = Classifier.load_from_checkpoint(args.classifier, map_location="cpu")
    score, coverage = classifier_score(gan, clf, args.samples, args.seed)
    result = {"classifier_score": score, "class_coverage": coverage, "samples": args.samples,
              "classifier": str(args.classifier)}
    text = json.dumps(result, indent=2)
    atomic_write_text(Path(args.gan).resolve().parent.parent / "classifier_score.json", text + "\n")
    print(text)
    return 0

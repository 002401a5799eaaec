"""The scores of ``dlmnist gan-score`` on hand-made inputs: the Fréchet distance in a classifier's feature space,
the share of samples per class, and the command's refusal of a sample count it cannot compare.
(The command on trained checkpoints: tests/test_gan.py.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlmnist.analysis.gan_score import main as gan_score
from dlmnist.data.sources import MNIST_STD
from dlmnist.nn import ConvEncoder
from dlmnist.sample_scores import (
    ClassifierFeatures,
    class_probabilities_score,
    class_shares,
    frechet_distances,
)


class _QuadrantMeans(nn.Module):
    """An encoder stand-in, linear in the pixels: the mean of each 14x14 quadrant (4 features). It records the
    shapes it is called with."""

    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return F.avg_pool2d(x, 14).flatten(1)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    torch.manual_seed(0)
    images = torch.rand(500, 1, 28, 28)
    encoder = _QuadrantMeans()
    features = ClassifierFeatures(encoder)
    assert encoder.calls == []  # num_features: torchmetrics does not try the extractor on a 299x299 image
    # features linear in the pixels: adding c to every pixel moves each of the 4 standardised features by c / std
    # and leaves their covariance as it was, so the distance is 4 (c / std)^2
    same, small, large = frechet_distances(features, [images], [images[:250], images[250:]], [images + 0.05],
                                           [images + 0.1])  # fmt: skip
    assert abs(same) < 1e-9
    assert small == pytest.approx(4 * (0.05 / MNIST_STD) ** 2, rel=1e-4)
    assert large == pytest.approx(4 * (0.1 / MNIST_STD) ** 2, rel=1e-4)
    assert {shape[1:] for shape in encoder.calls} == {(1, 28, 28)}  # only the images themselves
    # a convolutional encoder (a CNN's features, 16 of them): 0 for the same set, more for a shifted or other set
    cnn = ClassifierFeatures(ConvEncoder(channels=[4, 8], latent_dim=16))
    same, shifted, other = frechet_distances(cnn, [images], [images], [images + 0.1], [torch.rand(500, 1, 28, 28)])
    assert abs(same) < 1e-6 * shifted and shifted > 0 and other > abs(same)
    assert not cnn.training and not cnn.train().training  # batch norm and dropout at inference, always


def test_classifier_features_need_the_encoders_feature_count():
    with pytest.raises(ValueError, match="latent_dim"):
        ClassifierFeatures(nn.Flatten())


def test_class_shares_and_coverage_of_hand_made_probabilities():
    # 100 samples: 50 called 0, 30 called 2, 19 called 9, 1 called 5 (1%: covered); none of the other six digits
    calls = torch.tensor([0] * 50 + [2] * 30 + [9] * 19 + [5])
    p = torch.full((100, 10), 0.02)
    p[torch.arange(100), calls] = 0.82
    shares = class_shares(p)
    expected = [0.5, 0, 0.3, 0, 0, 0.01, 0, 0, 0, 0.19]
    assert shares.tolist() == pytest.approx(expected) and shares.sum().item() == pytest.approx(1.0)
    assert class_probabilities_score(p)[1] == 4 and shares.min().item() == 0.0
    # every digit equally often: each share 0.1, full coverage, the smallest share 0.1
    even = torch.eye(10).repeat(7, 1)
    assert class_shares(even).tolist() == pytest.approx([0.1] * 10) and class_probabilities_score(even)[1] == 10
    # ties go to the lower digit (argmax): a uniform row counts for 0
    assert class_shares(torch.full((4, 10), 0.1)).tolist() == [1.0] + [0.0] * 9


@pytest.mark.parametrize("samples", ["1", "10001"])
def test_gan_score_refuses_a_sample_count_it_cannot_compare_with_test_images(samples, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gan_score(["--gan", "missing.ckpt", "--classifier", "missing.ckpt", "--samples", samples])
    assert exit_info.value.code == 2 and "--samples must be 2 to 10000" in capsys.readouterr().err

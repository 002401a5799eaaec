"""Shift equivariance measured on real MNIST digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from dlmnist.reference.shift import (
    equivariance_error,
    invariance_error,
    measure,
    prediction_changes,
    real_digits,
    small_cnn,
)


@pytest.fixture(scope="module")
def digits(mnist_dir):
    return real_digits(mnist_dir, 64)


def test_conv_constant_and_relu_commute_with_shifts(digits):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 5, padding=2, padding_mode="circular")
    for dy, dx in [(1, 0), (0, 3), (-2, 5)]:
        assert equivariance_error(conv, digits, dy, dx) < 1e-6
        assert equivariance_error(lambda t: t + 0.7, digits, dy, dx) < 1e-6
        assert equivariance_error(torch.relu, digits - 0.5, dy, dx) < 1e-6


def test_zero_padding_breaks_exact_equivariance(digits):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 5, padding=2)  # zeros instead of wrapping around
    assert equivariance_error(conv, digits + 1.0, 1, 1) > 1e-3


def test_strided_pooling_is_equivariant_only_to_multiples_of_its_stride(digits):
    pool = nn.MaxPool2d(2)
    assert equivariance_error(pool, digits, 2, 4, factor=2) < 1e-6
    assert equivariance_error(pool, digits, 1, 1, factor=2) > 0.1
    assert equivariance_error(nn.AvgPool2d(2), digits, 1, 0, factor=2) > 0.1


def test_cnn_is_not_shift_invariant(digits):
    cnn = small_cnn(0)
    assert invariance_error(cnn, digits, 1, 1) > 0.05
    assert equivariance_error(cnn[:-2], digits, 4, 4, factor=4) < 1e-6  # features: equivariant to shifts by 4


def test_measure_reports_every_property(digits):
    values = measure(digits)
    assert len(values) == 7
    assert values["max pool 2, shift 1: equivariance error"] > 0.1
    assert values["conv (circular padding), shift 1: equivariance error"] < 1e-6


def test_prediction_changes_counts_flipped_classes(digits):
    cnn = small_cnn(0)
    changes = prediction_changes(cnn, digits, (0, 1, 28))
    assert changes[0] == 0.0 and changes[28] == 0.0  # no shift, or a full turn, changes nothing
    assert changes[1] * len(digits) == round(changes[1] * len(digits))  # a share of the 64 digits


def test_prediction_changes_by_hand():
    """A model that reads one pixel: class 1 if the top-left pixel is bright. A shift by d right and down brings
    pixel (-d, -d) there, so an image's class changes exactly when those two pixels differ."""

    def top_left(t):
        return torch.nn.functional.one_hot((t[:, 0, 0, 0] > 0.5).long(), 2).float()

    x = torch.zeros(4, 1, 28, 28)
    x[:, 0, 0, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    x[:, 0, -1, -1] = torch.tensor([1.0, 0.0, 0.0, 1.0])  # shift 1: the 2nd and 4th change
    x[:, 0, -2, -2] = torch.tensor([0.0, 0.0, 1.0, 1.0])  # shift 2: all four
    x[:, 0, -3, -3] = x[:, 0, 0, 0]  # shift 3: none
    assert prediction_changes(top_left, x, (1, 2, 3, 28)) == {1: 0.5, 2: 1.0, 3: 0.0, 28: 0.0}

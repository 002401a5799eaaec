"""Issue 18's learning tools: dilated and 1x1 convolutions, classifier losses and full-batch GD, MLP depth and
activation, dropout scaling, sparse and contractive autoencoders, the Bernoulli KL figure."""

from __future__ import annotations

import pytest
import torch

from dlmnist.analysis.walk import spatial_receptive_field, summarize_module
from dlmnist.config import model_from_config
from dlmnist.nn import ConvEncoder

from .conftest import CONFIGS


# ---- dilation and 1x1 convolutions --------------------------------------------------------------------------
def test_dilated_conv_encoder_keeps_same_padding_and_grows_the_receptive_field():
    enc = ConvEncoder(channels=[4, 4], kernel_sizes=3, dilations=[1, 3], pool=1, latent_dim=None)
    assert enc.features[1].conv.dilation == (3, 3) and enc.features[1].conv.padding == (3, 3)
    assert enc(torch.zeros(2, 1, 28, 28)).shape == (2, 4 * 28 * 28)  # "same" padding: d * (k // 2)
    # receptive field: 3, then 3 + (3 - 1) * 3 = 9 (an undilated 3x3 would give 5)
    assert spatial_receptive_field(summarize_module(enc.features)) == ("9x9", "1")
    with pytest.raises(ValueError, match="dilations"):
        ConvEncoder(dilations=[1, 0])
    with pytest.raises(ValueError, match="dilation 9"):
        ConvEncoder(channels=[4, 4], dilations=[1, 9], paddings=0)


@pytest.mark.parametrize("name, rf", [("cnn.yaml", "12x12"), ("cnn_study/dilated.yaml", "16x16"),
                                      ("cnn_study/pointwise.yaml", "12x12")])  # fmt: skip
def test_study_configs_receptive_fields_as_dlmnist_summarize_shows_them(name, rf):
    summary = summarize_module(model_from_config(CONFIGS / name))
    assert spatial_receptive_field(summary)[0] == rf
    assert all(r.predicted == r.out_shape for r in summary.rows)
    if "pointwise" in name:  # the 1x1 conv leaves the field and the map size alone
        one = next(r for r in summary.rows if r.kind == "Conv2d 1x1")
        assert one.rf == "6x6" and one.out_shape == (12, 12, 12)

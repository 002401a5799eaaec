"""The residual option of ConvEncoder (skip connections, sheet 002 CNNs 4) and ``dlmnist filters``."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dlmnist.analysis.filters import filter_stats, filters_figure, first_conv
from dlmnist.analysis.walk import summarize_module
from dlmnist.models import Classifier
from dlmnist.nn import ConvEncoder

from .conftest import fit_briefly, run_cli


def test_a_residual_layer_is_its_conv_plus_its_input():
    torch.manual_seed(0)
    enc = ConvEncoder(channels=[1], kernel_sizes=3, pool=1, batch_norm=False, residual=True, latent_dim=None)
    assert isinstance(enc.features[0].skip, nn.Identity)  # same channels, stride 1: y = relu(conv(x) + x)
    x = torch.randn(4, 1, 28, 28)
    conv = enc.features[0].body.conv
    assert torch.allclose(enc(x), F.relu(conv(x) + x).flatten(1))
    with torch.no_grad():
        conv.weight.zero_(), conv.bias.zero_()
    assert torch.equal(enc(x), F.relu(x).flatten(1))  # a zero conv leaves the input through


@pytest.mark.parametrize("pool_first", [False, True])
def test_residual_encoder_shapes_projections_and_gradients(pool_first):
    torch.manual_seed(0)
    enc = ConvEncoder(channels=[8, 16, 16], kernel_sizes=[5, 3, 3], strides=[1, 1, 2], pool=[2, 2, 1],
                      pool_first=pool_first, residual=True, latent_dim=10)
    plain = ConvEncoder(channels=[8, 16, 16], kernel_sizes=[5, 3, 3], strides=[1, 1, 2], pool=[2, 2, 1],
                        pool_first=pool_first, latent_dim=10)
    skips = [[m for m in block.skip.modules() if isinstance(m, nn.Conv2d)] for block in enc.features]
    assert [s[0].kernel_size for s in skips] == [(1, 1)] * 3  # 1 -> 8 -> 16 channels: 1x1 projections
    assert skips[2][0].stride == (2, 2)  # same channels, but stride 2: a strided 1x1 projection
    if pool_first:  # the skip pools too, before the sum
        assert [isinstance(block.skip[-1], nn.MaxPool2d) for block in enc.features] == [True, True, False]
    assert enc.feature_shape == plain.feature_shape == (16, 4, 4)
    out = enc(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_plain_encoder_keeps_its_parameter_names():
    names = list(ConvEncoder(channels=[4, 8]).state_dict())
    assert names[:2] == ["features.0.conv.weight", "features.0.norm.weight"]  # checkpoints of plain runs still load
    residual = list(ConvEncoder(channels=[4, 8], residual=True).state_dict())
    assert residual[0] == "features.0.body.conv.weight" and "features.0.skip.conv.weight" in residual


def test_residual_refuses_a_conv_that_shrinks_the_map():
    with pytest.raises(ValueError, match=r"layer 1: residual needs .* 24x24: use paddings: null"):
        ConvEncoder(channels=[8], kernel_sizes=5, paddings=0, residual=True)


def test_summarize_follows_the_conv_branch_to_the_sum():
    enc = ConvEncoder(channels=[8, 16], kernel_sizes=[5, 3], residual=True, latent_dim=None)
    rows = {r.name: r for r in summarize_module(enc, (1, 28, 28)).rows}
    assert rows["features.0.tail.act"].rf == "5x5"  # the 5x5 conv's field, not the 1x1 skip's
    assert rows["features.1.tail.pool"].rf == "12x12" and rows["features.1.tail.pool"].out_shape == (16, 7, 7)


def test_filter_stats_of_a_point_and_a_flat_filter():
    point, flat = torch.zeros(1, 1, 3, 3), torch.ones(1, 1, 3, 3)
    point[0, 0, 1, 1] = -2.0
    assert filter_stats(point) == {"centre_share": 1.0, "dc": -1.0}
    assert filter_stats(flat)["centre_share"] == pytest.approx(1 / 9) and filter_stats(flat)["dc"] == 1.0
    fig = filters_figure([("a", torch.cat([point, flat])), ("b", torch.randn(9, 2, 3, 3))], ncols=4)
    assert len(fig.axes) == (1 + 3) * 4  # 2 filters: one row of 4; 9 filters: three rows
    assert [len(ax.images) for ax in fig.axes[:4]] == [1, 1, 0, 0]
    assert fig.axes[4].images[0].get_array().shape == (3, 6)  # two input channels side by side


def test_filters_command_draws_the_first_conv_of_plain_and_residual_runs(mnist_dir, tmp_path, capsys):
    ckpts = []
    for residual in (False, True):
        enc = ConvEncoder(channels=[6, 8], kernel_sizes=[5, 3], residual=residual, latent_dim=16)
        model = Classifier(encoder=enc)
        assert first_conv(model)[0] == ("encoder.features.0.body.conv" if residual else "encoder.features.0.conv")
        (tmp_path / str(residual)).mkdir()
        ckpts.append(fit_briefly(model, mnist_dir, tmp_path / str(residual)))
    out = tmp_path / "filters.png"
    with pytest.raises(SystemExit) as done:
        run_cli("filters", *ckpts, "--out", str(out), "--titles", "plain,residual")
    assert done.value.code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("plain: encoder.features.0.conv (6, 1, 5, 5), centre share ")
    assert lines[1].startswith("residual: encoder.features.0.body.conv (6, 1, 5, 5), centre share ")

"""`dlmnist summarize`: the layer table checked against the forward pass (every config: tests/test_configs.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import yaml

from dlmnist.analysis.summarize import format_summary
from dlmnist.analysis.walk import summarize_module
from dlmnist.config import model_from_config
from dlmnist.models import Model

from .conftest import CONFIGS, EXPERIMENT_CONFIGS, run_cli

EXPERIMENTS = EXPERIMENT_CONFIGS


def _summarize(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        run_cli("summarize", *args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_lenet5_table(capsys):
    code, out, _ = _summarize(capsys, "-c", str(CONFIGS / "lenet5.yaml"))
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line[:3].strip().isdigit()}
    conv1, pool2, fc = rows["encoder.features.0.conv"], rows["encoder.features.1.pool"], rows["encoder.to_latent.2"]
    assert conv1[2:] == ["Conv2d", "5x5", "p2", "6x28x28", "156", "5x5", "1", "ok"]
    assert pool2[-5:] == ["16x5x5", "0", "16x16", "4", "ok"]
    assert fc[-6:] == ["120", "48,120", "whole", "input", "-", "ok"]
    assert "13 of 13 computed output shapes agree" in out and "61,706 in the model" in out
    assert "floor((28 + 2*2 - 5) / 1) + 1 = 28" in out and "(5*5*6 + 1) * 16 = 2416" in out


def test_receptive_field_in_the_table_is_what_the_gradient_sees():
    """The last LeNet-5 feature map: 16x16 by the table; the input pixels with a gradient for one output agree."""
    model = model_from_config(CONFIGS / "lenet5.yaml").double()
    summary = summarize_module(model)
    last_pool = next(r for r in summary.rows if r.name == "encoder.features.1.pool")
    x = torch.randn(1, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    model.encoder.features(x)[0, 0, 2, 2].backward()
    grad = x.grad[0, 0].abs()
    rows, cols = grad.sum(1).nonzero(), grad.sum(0).nonzero()
    span = f"{int(rows.max() - rows.min() + 1)}x{int(cols.max() - cols.min() + 1)}"
    assert last_pool.rf == span == "16x16" and last_pool.jump == "4"


def test_a_config_that_shrinks_to_zero_is_refused_naming_the_layer(tmp_path, capsys):
    cfg = yaml.safe_load((CONFIGS / "cnn.yaml").read_text())
    cfg["model"]["init_args"]["encoder"]["init_args"].update(channels=[8, 8, 8], kernel_sizes=5, paddings=0)
    path = tmp_path / "shrinks.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = _summarize(capsys, "-c", str(path))
    assert code == 2
    assert "ConvEncoder layer 3 (conv 5x5, stride 1, padding 0, dilation 1, pool 2) shrinks its 4x4 input to 0x0" in err
    assert "Union subtypes" not in err


def test_any_module_that_shrinks_to_zero_stops_before_that_layer_runs():
    net = nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5))
    summary = summarize_module(net)
    assert len(summary.rows) == 4
    assert summary.error.startswith("layer 4 (Conv2d 5x5) shrinks its 4x4x4 input to 4x0x0")


class Crop(nn.Module):  # a layer type summarize has no rule for
    def forward(self, x):
        return x[..., 1:, 1:]


class TinyAutoencoder(nn.Module):
    """Stands in for models other helpers add: encoder, decoder, a custom layer, attention, a loose parameter."""

    def __init__(self):
        super().__init__()
        from dlmnist.nn import ConvDecoder, ConvEncoder

        self.encoder, self.decoder, self.crop = ConvEncoder([4, 8], latent_dim=6), ConvDecoder(6, [8, 4]), Crop()
        self.attn, self.pos = nn.MultiheadAttention(8, 2, batch_first=True), nn.Parameter(torch.zeros(1, 49, 8))

    def forward(self, x):
        tokens = self.encoder.features(x).flatten(2).transpose(1, 2) + self.pos  # (B, 49, 8)
        return self.crop(self.decoder(self.encoder(x))), self.attn(tokens, tokens, tokens)[0]


def test_generic_models_and_unknown_layers_do_not_crash():
    summary = summarize_module(TinyAutoencoder())
    rows = {r.name: r for r in summary.rows}
    assert rows["crop"].predicted is None and rows["crop"].out_shape == (1, 27, 27) and rows["crop"].rf == "?"
    assert rows["decoder.layers.0"].kind == "ConvTranspose2d 4x4 s2 p1" and rows["decoder.layers.0"].out_shape == (
        8,
        14,
        14,
    )
    assert rows["attn"].rf == "whole input" and rows["attn"].params == 8 * 8 * 4 + 8 * 4
    assert all(r.predicted in (None, r.out_shape) for r in summary.rows)
    text = format_summary(summary)
    assert "no rule for Crop" in text and "parameters held outside the listed layers: pos" in text


class PairModel(Model):
    """A model whose forward wants two images: summarize falls back to its encoder."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, channels, 3, stride=2), nn.ReLU(), nn.Flatten())

    def forward(self, x, x2):
        return self.encoder(x) - self.encoder(x2)


def test_a_forward_that_needs_more_than_an_image_falls_back_to_the_encoder(tmp_path, capsys):
    path = tmp_path / "pair.yaml"
    path.write_text(yaml.safe_dump({"model": {"class_path": f"{__name__}.PairModel"}}))
    code, out, _ = _summarize(capsys, "-c", str(path))
    assert code == 0
    assert "summarizing model.encoder instead" in out and "encoder.0  Conv2d 3x3 s2" in out and "4x13x13" in out


class CroppingConv(nn.Conv2d):  # a Conv2d whose output is not what its settings say
    def forward(self, x):
        return super().forward(x)[..., 1:, :]


def test_a_shape_that_differs_from_the_arithmetic_is_flagged():
    summary = summarize_module(nn.Sequential(nn.Conv2d(1, 2, 3), CroppingConv(2, 2, 3), nn.Flatten()))
    text = format_summary(summary)
    assert "DIFFERS: rule says 2x24x24" in text and "2 of 3 computed output shapes agree" in text


@pytest.mark.parametrize("config, code", [("ae_conv.yaml", "12"), ("vae.yaml", "32")])
def test_a_decoder_part_gets_its_input_shape_from_the_model(config, code, capsys):
    from dlmnist.analysis.summarize import main

    assert main(["-c", str(CONFIGS / config), "--part", "decoder"]) == 0
    out = capsys.readouterr().out
    assert f"model.decoder run on 2 inputs of shape {code}\n" in out

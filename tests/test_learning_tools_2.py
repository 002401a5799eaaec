"""Issue 18's learning tools: dilated and 1x1 convolutions, classifier losses and full-batch GD, MLP depth and
activation, dropout scaling, sparse and contractive autoencoders, the Bernoulli KL figure."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

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
                                      ("cnn_study/pointwise.yaml", "12x12")])
def test_study_configs_receptive_fields_as_dlmnist_summarize_shows_them(name, rf):
    summary = summarize_module(model_from_config(CONFIGS / name))
    assert spatial_receptive_field(summary)[0] == rf
    assert all(r.predicted == r.out_shape for r in summary.rows)
    if "pointwise" in name:  # the 1x1 conv leaves the field and the map size alone
        one = next(r for r in summary.rows if r.kind == "Conv2d 1x1")
        assert one.rf == "6x6" and one.out_shape == (12, 12, 12)


# ---- classifier loss, full batch ----------------------------------------------------------------------------
def test_mse_loss_is_the_one_hot_squared_error_of_the_softmax():
    from dlmnist.models.classifier import classification_loss

    logits, y = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]), torch.tensor([0, 2])
    p = logits.softmax(-1)
    brier = ((p[0] - torch.tensor([1.0, 0, 0])) ** 2).sum() + ((p[1] - torch.tensor([0, 0, 1.0])) ** 2).sum()
    assert classification_loss(logits, y, "mse") == pytest.approx(brier.item() / 2)
    assert classification_loss(logits, y, "cross_entropy") == pytest.approx(F.cross_entropy(logits, y).item())
    assert classification_loss(torch.tensor([[50.0, 0, 0]]), torch.tensor([0]), "mse") < 1e-6
    assert model_from_config(CONFIGS / "mlp_mse.yaml").loss_name == "mse"
    with pytest.raises(ValueError, match="loss must be"):
        model_from_config(CONFIGS / "mlp.yaml").__class__(encoder=nn.Flatten(), loss="hinge")


def test_full_batch_is_one_batch_of_the_whole_training_split(fake_data):
    from dlmnist.data import MNISTDataModule

    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", batch_size=7, full_batch=True)
    dm.setup("fit")
    (x, y), *rest = list(dm.train_dataloader())
    assert not rest and len(x) == len(dm.train_x) == 480  # 600 fake images, 20% held out
    assert len(list(dm.val_dataloader())) == 1  # evaluation batches are unchanged (eval_batch_size 1000)


# ---- depth, activation, initialisation scale ----------------------------------------------------------------
def layer_gradients(config: str) -> tuple[float, float]:
    """Gradient norms of the first and the last Linear layer's weights after one batch of random images."""
    torch.manual_seed(0)
    model = model_from_config(CONFIGS / config)
    model.training_step((torch.randn(256, 1, 28, 28), torch.arange(256) % 10), 0).backward()
    first = model.encoder.net[1][0].weight.grad.norm().item()
    return first, model.head[0].weight.grad.norm().item()


def test_deep_sigmoid_gradients_vanish_towards_the_input_and_he_init_keeps_relus_flowing():
    first, last = layer_gradients("mlp_study/deep_sigmoid.yaml")
    assert first < last / 100  # sigmoid' <= 1/4 at every one of 8 layers
    first, last = layer_gradients("mlp_study/deep_relu_he_init.yaml")
    assert last / 10 < first < last * 10
    small, _ = layer_gradients("mlp_study/deep_relu_small_init.yaml")
    large, _ = layer_gradients("mlp_study/deep_relu_large_init.yaml")
    assert small < first < large  # init scale 0.5 < sqrt(2) < 1.7: each layer shrinks / keeps / grows the signal


def test_init_scale_sets_the_weight_std():
    from dlmnist.nn import MLP

    torch.manual_seed(0)
    mlp = MLP(400, [300], 10, init_scale=2.0)
    assert mlp[0].weight.std().item() == pytest.approx(2.0 / 20, rel=0.02) and not mlp[0].bias.any()
    with pytest.raises(ValueError, match="init_scale"):
        MLP(4, [4], 2, init_scale=0.0)


# ---- dropout ------------------------------------------------------------------------------------------------
def test_inverted_dropout_keeps_the_expected_activation_and_unscaled_dropout_does_not():
    torch.manual_seed(0)
    x, p = torch.rand(1_000_000) + 0.5, 0.3  # activations with mean 1
    dropout = nn.Dropout(p).train()
    inverted = dropout(x)  # kept values scaled by 1 / (1 - p)
    unscaled = inverted * (1 - p)  # the same mask, no scaling
    assert inverted.mean().item() == pytest.approx(x.mean().item(), rel=0.005)
    assert unscaled.mean().item() == pytest.approx((1 - p) * x.mean().item(), rel=0.005)
    assert torch.equal(dropout.eval()(x), x)  # at test time dropout is the identity: train and test agree in mean
    # unscaled dropout would need the test-time activations multiplied by (1 - p) to match training
    assert (inverted == 0).float().mean().item() == pytest.approx(p, abs=0.002)


@pytest.mark.parametrize("activation, same", [("relu", True), ("tanh", False)])
def test_dropout_before_or_after_the_activation(activation, same):
    from dlmnist.nn import MLP

    x = torch.randn(64, 20)
    outs = []
    for position in ("before", "after"):
        torch.manual_seed(0)
        mlp = MLP(20, [50], 3, activation, dropout=0.5, dropout_position=position).train()
        torch.manual_seed(1)  # the same dropout mask for both
        outs.append(mlp(x))
    assert torch.allclose(*outs) is same  # ReLU(0) = 0 and ReLU(cz) = c ReLU(z): the order does not matter
    kinds = [type(m).__name__ for m in MLP(20, [50], 3, activation, 0.5, dropout_position="before")]
    assert kinds[:3] == ["Linear", "Dropout", activation.capitalize() if activation == "tanh" else "ReLU"]


# ---- sparse, contractive, fully convolutional autoencoders --------------------------------------------------
def test_sparse_autoencoder_adds_the_l1_activity_penalty_of_the_code():
    torch.manual_seed(0)
    model = model_from_config(CONFIGS / "ae_sparse.yaml")
    x = torch.rand(8, 1, 28, 28)
    loss = model.step((x, torch.zeros(8, dtype=torch.long)), "val", 0)
    code = model.encoder(x)
    recon = F.mse_loss(model.decoder(code), x)
    assert loss.item() == pytest.approx(recon.item() + 0.01 * code.abs().mean().item(), rel=1e-5)


def test_jacobian_norm_estimate_matches_the_exact_jacobian_and_the_sigmoid_closed_form():
    from dlmnist.losses import encode_with_jacobian_norm

    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(30, 6), nn.Sigmoid())
    x = torch.randn(1, 1, 5, 6)
    exact = torch.autograd.functional.jacobian(encoder, x).square().sum().item()
    h, w = encoder(x)[0], encoder[1].weight
    closed = ((h * (1 - h)) ** 2 * w.square().sum(dim=1)).sum().item()  # sum_j (h_j (1 - h_j))^2 ||W_j||^2
    code, estimate = encode_with_jacobian_norm(encoder, x, projections=4000)
    assert closed == pytest.approx(exact, rel=1e-5) and estimate.item() == pytest.approx(exact, rel=0.05)
    assert torch.equal(code, encoder(x))
    estimate.backward()  # the penalty trains the encoder
    assert encoder[1].weight.grad.abs().sum() > 0


def test_contractive_autoencoder_penalty_reaches_the_loss():
    torch.manual_seed(0)
    model = model_from_config(CONFIGS / "ae_contractive.yaml")
    x = torch.rand(8, 1, 28, 28)
    loss = model.step((x, torch.zeros(8, dtype=torch.long)), "train", 0)
    recon = F.mse_loss(model(x), x)
    assert loss.item() > recon.item()  # + 0.001 x ||J||_F^2
    with pytest.raises(ValueError, match="contractive_weight"):
        model.__class__(encoder=model.encoder, decoder=model.decoder, contractive_weight=-1.0)


def test_conv_autoencoder_without_the_fc_latent_layer():
    fc, no_fc = model_from_config(CONFIGS / "ae_conv.yaml"), model_from_config(CONFIGS / "ae_conv_nofc.yaml")
    assert any(isinstance(m, nn.Linear) for m in fc.modules())
    assert not any(isinstance(m, nn.Linear) for m in no_fc.modules())  # convolutions only
    assert no_fc.encoder.latent_dim == 32 * 7 * 7 and no_fc(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    from dlmnist.nn import ConvDecoder

    with pytest.raises(ValueError, match="latent_dim must be 1568"):
        ConvDecoder(latent_dim=12, channels=[32, 16], latent_fc=False)


# ---- Bernoulli KL figure ------------------------------------------------------------------------------------
def test_bernoulli_kl_command_writes_the_figure_with_the_sheets_pair(tmp_path, capsys):
    from dlmnist.entry import run_extra

    out = tmp_path / "kl.png"
    assert run_extra("bernoulli-kl", ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    # 0.4 ln(0.4/0.8) + 0.6 ln(0.6/0.2) and 0.8 ln(0.8/0.4) + 0.2 ln(0.2/0.6): not symmetric
    assert "KL(0.4 || 0.8) = 0.3819" in text and "KL(0.8 || 0.4) = 0.3348" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        run_extra("bernoulli-kl", ["--mark", "0.4", "1.0", "--out", str(out)])

"""VAE and ViT: argument checks, the NLL estimate, KL warm-up, binarisation, and a short real CLI run of each."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dlmnist.losses import (
    bernoulli_log_likelihood,
    bernoulli_log_likelihood_eval,
    gaussian_kl_standard_normal,
    log_normal,
)
from dlmnist.models import VAE, ViT
from dlmnist.nn import ConvDecoder, ConvEncoder, DenseDecoder, DenseEncoder

from .conftest import CONFIGS, run_cli

SHORT_FIT = ("--trainer.max_epochs=1", "--trainer.limit_train_batches=4", "--trainer.limit_val_batches=1")


def small_vae(**kw) -> VAE:
    return VAE(DenseEncoder(latent_dim=32), DenseDecoder(latent_dim=4, hidden=[32], out_activation=None), 4, **kw)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 3}, "latent_dim=3 but the decoder takes latent_dim=4"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"nll_samples": 0}, "nll_samples must be a positive integer"),
        ({"kl_warmup_steps": -5}, "kl_warmup_steps"),
        ({"nll_precision": "bf16"}, "nll_precision must be one of 32-true, bf16-mixed, got 'bf16'"),
    ],
)
def test_vae_refuses_bad_arguments(kwargs, message):
    args = {"latent_dim": 4, **kwargs}
    dec = DenseDecoder(latent_dim=4, out_activation=None)
    with pytest.raises(ValueError, match=message):
        VAE(DenseEncoder(latent_dim=8), dec, **args)


def test_bernoulli_vae_needs_logits():
    with pytest.raises(ValueError, match="out_activation: null"):
        VAE(DenseEncoder(latent_dim=8), DenseDecoder(latent_dim=4, out_activation="sigmoid"), 4)


def test_kl_warmup_is_linear():
    vae = small_vae(beta=2.0, kl_warmup_steps=100)
    assert [vae.kl_weight(s) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]
    assert small_vae(beta=4.0).kl_weight(0) == 4.0


def test_binarisation_dynamic_in_training_fixed_in_evaluation():
    vae = small_vae()
    x = torch.rand(8, 1, 28, 28)
    a, b = vae.targets(x, "train"), vae.targets(x, "train")
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    assert torch.equal(vae.targets(x, "test", 3), vae.targets(x, "test", 3))
    assert torch.equal(small_vae(binarize=False).targets(x, "val"), x)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_importance_weighted_nll_tightens_with_k(likelihood):
    torch.manual_seed(0)
    dec = DenseDecoder(latent_dim=4, hidden=[32], out_activation=None if likelihood == "bernoulli" else "sigmoid")
    vae = VAE(DenseEncoder(latent_dim=32), dec, 4, likelihood=likelihood).eval()
    x = vae.targets(torch.rand(32, 1, 28, 28), "test")
    nll_1, nll_200 = vae.importance_weighted_nll(x, 1).mean(), vae.importance_weighted_nll(x, 200).mean()
    assert torch.isfinite(nll_200) and nll_200 < nll_1  # the bound tightens with more samples
    torch.manual_seed(1)
    few_rows = vae.importance_weighted_nll(x, 200, rows=64)  # 2 samples per image at a time
    torch.manual_seed(1)
    assert torch.equal(few_rows, vae.importance_weighted_nll(x, 200))  # all 200 at once: the same numbers


@pytest.mark.parametrize("d", [784, 30])  # 30: the last group of 16 pixels padded
def test_the_evaluation_likelihood_equals_the_training_loss(d):
    torch.manual_seed(0)
    logits = torch.randn(3, 40, d) * 8
    logits[0, 0, :4] = torch.tensor([60.0, -60.0, 0.0, 1e-6])  # saturated and flat pixels
    for x in (torch.rand(3, d).round(), torch.rand(3, d)):  # binary and grey images
        rows = x.double().unsqueeze(1).expand(3, 40, d).flatten(0, 1)
        exact = bernoulli_log_likelihood(logits.double().flatten(0, 1), rows).view(3, 40)
        fast = bernoulli_log_likelihood_eval(logits.clone(), x)
        assert fast.dtype == torch.float32 and torch.allclose(fast.double(), exact, rtol=0, atol=2e-3)
        half = bernoulli_log_likelihood_eval(logits.bfloat16(), x)  # bf16 logits are summed in float32
        assert torch.allclose(half.double(), exact, rtol=0, atol=0.05 * d)


def test_the_nll_estimate_is_its_definition():
    """The fast estimate against the formula written out with the training loss, on the same samples of z."""
    torch.manual_seed(0)
    vae = small_vae(nll_precision="32-true").eval()
    x = vae.targets(torch.rand(16, 1, 28, 28), "test")
    torch.manual_seed(1)
    fast = vae.importance_weighted_nll(x, 64, rows=16 * 16)  # four chunks of 16 samples
    torch.manual_seed(1)
    with torch.no_grad():
        mean, logvar = vae.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn(64, *mean.shape)  # (k, B, L)
        log_px = bernoulli_log_likelihood(vae.decoder(z.flatten(0, 1)), x.repeat(64, 1, 1, 1)).view(64, 16)
        log_w = log_px + log_normal(z) - log_normal(z, mean, logvar)
        exact = math.log(64) - torch.logsumexp(log_w, dim=0)
    assert torch.allclose(fast, exact, rtol=0, atol=1e-3)


def test_the_nll_holds_for_a_posterior_narrower_than_float32_resolves():
    """beta = 0 trains codes with a posterior std near 1e-10: mean + std * eps rounds to the mean. log q(z|x) must
    come from eps then, not from (z - mean) / std, or each code dimension adds half a nat to the estimate. With
    k = 1 the estimate is minus the ELBO in expectation."""
    torch.manual_seed(0)
    vae = small_vae(nll_precision="32-true").eval()
    x = vae.targets(torch.rand(64, 1, 28, 28), "test")
    mean = torch.randn(64, 4) + 2.0
    logvar = torch.full_like(mean, -46.0)  # std 1e-10
    vae.encode = lambda images: (mean, logvar)
    nll_1 = torch.stack([vae.importance_weighted_nll(x, 1) for _ in range(50)]).mean()
    with torch.no_grad():
        recon = -bernoulli_log_likelihood(vae.decoder(mean), x)
    kl = gaussian_kl_standard_normal(mean, logvar)  # the training loss's KL, in closed form
    assert torch.equal(mean + (0.5 * logvar).exp() * torch.randn_like(mean), mean)  # the case: z is the mean
    assert abs(nll_1 - (recon + kl).mean()) < 0.25  # off by 4 x 0.5 = 2 nats when log q is read from z


def test_the_nll_in_bf16_agrees_and_falls_back_to_float32(monkeypatch):
    torch.manual_seed(0)
    vae = small_vae(nll_precision="bf16-mixed").eval()
    with torch.no_grad():
        vae.decoder.net[-1].weight.mul_(10.0)  # logits as large as a trained decoder's
    x = vae.targets(torch.rand(16, 1, 28, 28), "test")
    nll = {}
    for native in ("1", "0"):  # a CPU with native bf16, and one without (float32)
        monkeypatch.setenv("DLMNIST_CPU_BF16", native)
        torch.manual_seed(1)
        nll[native] = vae.importance_weighted_nll(x, 64)
    vae.hparams.nll_precision = "32-true"
    torch.manual_seed(1)
    float32 = vae.importance_weighted_nll(x, 64)
    assert torch.equal(nll["0"], float32)
    assert not torch.equal(nll["1"], float32) and (nll["1"] - float32).mean().abs() < 0.05


def test_conv_vae_from_the_shared_building_blocks():
    enc = ConvEncoder(channels=[4, 8], latent_dim=None)  # flattened 8x7x7 feature map
    vae = VAE(enc, ConvDecoder(latent_dim=3, channels=[8, 4], out_activation=None), latent_dim=3)
    x = torch.rand(5, 1, 28, 28)
    loss = vae.training_step((x, torch.arange(5)), 0)
    loss.backward()
    assert torch.isfinite(loss) and vae.to_mean.weight.shape == (3, 8 * 7 * 7)
    assert vae(x).shape == (5, 1, 28, 28) and 0 <= vae(x).min() and vae(x).max() <= 1


def test_vit_refuses_a_patch_size_that_does_not_divide_28():
    with pytest.raises(ValueError, match="patch_size must divide"):
        ViT(patch_size=5)
    with pytest.raises(ValueError, match="heads"):
        ViT(dim=30, heads=4)


def test_vit_attention_maps_for_an_image():
    vit = ViT(patch_size=7, dim=16, depth=3, heads=2, mlp_dim=16).eval()
    maps = vit.attention_maps(torch.rand(2, 1, 28, 28))
    assert [tuple(m.shape) for m in maps] == [(2, 2, 17, 17)] * 3


@pytest.mark.slow
def test_vit_cli_fit_test_attention_figure_and_reload(mnist_dir, tmp_path):
    common = ["-c", str(CONFIGS / "vit_small.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
    run_cli("fit", *common, *SHORT_FIT)
    run_cli("test", *common, "--trainer.limit_test_batches=1", "--ckpt_path=best")
    run = tmp_path / "vit_small" / "version_0"
    assert (run / "figures" / "test__attention.png").is_file()
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {k for k in metrics if k.startswith("test/")} == {"test/acc", "test/loss"}
    assert metrics["partial"] is True and metrics["test_images"] == 1000  # one test batch: 1,000 of the 10,000 images
    model = ViT.load_from_checkpoint(run / "checkpoints" / "best.ckpt")
    assert model.hparams.patch_size == 7 and model.encoder.latent_dim == 32


@pytest.mark.slow
def test_vae_2d_cli_fit_test_figures_and_reload(mnist_dir, tmp_path):
    common = ["-c", str(CONFIGS / "vae_2d.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
    common += ["--model.nll_samples=3", "--data.eval_batch_size=200"]
    run_cli("fit", *common, *SHORT_FIT)
    run_cli("test", *common, "--trainer.limit_test_batches=2", "--ckpt_path=best")
    run = tmp_path / "vae_2d" / "version_0"
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {"test/elbo", "test/kl", "test/recon", "test/nll_iw", "test/l1"} <= set(metrics)
    assert 0 < metrics["test/l1"] < 0.5  # the posterior mean's picture against the grey image, as an AE's
    assert 0 < metrics["test/nll_iw"] < 784 * 0.7  # below a coin flip per pixel (ln 2 each)
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/recon_epoch", "train/kl_epoch", "train/elbo_epoch", "val/elbo"} <= set(header)
    pictures = ("prior_samples", "posterior_samples", "reconstructions", "interpolation", "manifold", "latent_scatter")
    for name in pictures:
        assert (run / "figures" / f"test__{name}.png").is_file(), name
    model = VAE.load_from_checkpoint(run / "checkpoints" / "best.ckpt")
    assert model.hparams.latent_dim == 2 and model.encoder.latent_dim == 400

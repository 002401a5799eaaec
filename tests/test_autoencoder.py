"""AutoEncoder: losses, denoising input, argument checks; through the real CLI: metrics, pictures, predictions."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from dlmnist.models import AutoEncoder
from dlmnist.models.autoencoder import reconstruction_error
from dlmnist.nn import ConvDecoder, ConvEncoder, DenseDecoder, DenseEncoder

from .conftest import CONFIGS, run_cli


@pytest.mark.parametrize("loss, reference", [("l1", F.l1_loss), ("mse", F.mse_loss), ("bce", F.binary_cross_entropy)])
def test_reconstruction_error_per_image_averages_to_the_loss(loss, reference):
    recon, target = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    per_image = reconstruction_error(recon, target, loss)
    assert per_image.shape == (5,)
    assert torch.allclose(per_image.mean(), reference(recon, target), atol=1e-6)


def test_denoising_input_is_noisy_clipped_and_the_target_clean():
    model = AutoEncoder(DenseEncoder(8), DenseDecoder(8), noise_factor=0.5)
    x = torch.rand(4, 1, 28, 28)
    noisy = model.corrupt(x)
    assert noisy.min() >= 0 and noisy.max() <= 1 and (noisy - x).abs().mean() > 0.1
    assert torch.equal(AutoEncoder(DenseEncoder(8), DenseDecoder(8)).corrupt(x), x)
    titles = [t for t, _ in model.reconstruction_panels(x)]
    assert titles == ["input", "noisy input", "reconstruction"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss": "huber"}, "loss must be one of"),
        ({"noise_factor": -0.1}, "noise_factor"),
        ({"decoder": ConvDecoder(5)}, "decoder latent_dim 5 differs from the encoder's latent_dim 12"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"encoder": ConvEncoder(latent_dim=12), "decoder": ConvDecoder(12), **kwargs}
    with pytest.raises(ValueError, match=message):
        AutoEncoder(**args)


@pytest.mark.slow
def test_anomaly_run_fit_test_predict_on_fake_data(fake_data, tmp_path):
    common = ["-c", str(CONFIGS / "ae_anomaly.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist"]
    common += [f"--runs_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    run_cli("fit", *common, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2")
    run = tmp_path / "ae_anomaly" / "version_0"
    assert (run / "figures" / "val__reconstructions.png").is_file()  # the callback, through log_figure
    run_cli("test", *common, "--ckpt_path=best")
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert set(metrics) == {
        "test/loss",
        "test/l1",
        "test/mse",
        "test/auroc",
        "test/recon",
        "test/code_l1",
        "test/code_zero",
    }
    assert metrics["test/loss"] == pytest.approx(metrics["test/l1"]) and 0 <= metrics["test/auroc"] <= 1
    assert (run / "figures" / "test__reconstructions.png").is_file()
    assert (run / "figures" / "test__random_codes.png").is_file()  # random codes through the decoder
    run_cli("predict", *common, "--ckpt_path=best")
    out = torch.load(run / "reconstructions.pt")
    assert out["reconstruction"].shape == out["input"].shape == (100, 1, 28, 28)
    assert out["label"].tolist() == list(range(10)) * 10 and (run / "reconstructions.png").is_file()

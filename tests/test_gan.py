"""The GAN: two optimizers through the real CLI, logged discriminator accuracies, sample grids, checkpoint reload,
the classifier score under the package's own CNN, gradient statistics per player."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from dlmnist.analysis.gan_score import class_probabilities_score
from dlmnist.analysis.gan_score import main as gan_score
from dlmnist.models import GAN, Optim

from .conftest import CONFIGS, run_cli


def test_gan_trains_logs_reloads_and_is_scored_by_the_packages_cnn(fake_data, tmp_path):
    data = [f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist", "--data.batch_size=32"]
    common = [*data, f"--runs_dir={tmp_path}", "--trainer.enable_progress_bar=false", "--trainer.max_epochs=1"]
    common += ["--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1", "--trainer.log_every_n_steps=1"]
    run_cli("fit", "-c", str(CONFIGS / "gan.yaml"), *common, "--trainer.callbacks+=dlmnist.callbacks.GradientStats")
    run = tmp_path / "gan" / "version_0"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for key in (
        "train/d_acc_real_step",
        "train/d_acc_fake_step",
        "val/d_acc_real",
        "val/d_acc_fake",
        "train/g_loss_step",
    ):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values and ("acc" not in key or all(0 <= v <= 1 for v in values))
    grads = {k.split(".")[0] for k in rows[0] if k.startswith("grad_norm/")}
    assert grads == {"grad_norm/generator", "grad_norm/discriminator"}  # each optimizer's step reports its player
    assert (run / "figures" / "val__reconstructions.png").is_file()  # real digits beside samples of the fixed z

    gan = GAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    assert gan.sample(5).shape == (5, 1, 28, 28) and gan.fixed_z.shape == (64, 64)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert [o["param_groups"][0]["betas"] for o in state["optimizer_states"]] == [(0.5, 0.999)] * 2  # DCGAN's Adam

    run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), *common)  # the classifier that scores the samples
    cnn = tmp_path / "cnn" / "version_0" / "checkpoints" / "best.ckpt"
    gan_ckpt = run / "checkpoints" / "last.ckpt"
    assert gan_score(["--gan", str(gan_ckpt), "--classifier", str(cnn), "--samples", "300"]) == 0
    result = json.loads((run / "classifier_score.json").read_text())
    assert 1.0 <= result["classifier_score"] <= 10.0 and 1 <= result["class_coverage"] <= 10


def test_classifier_score_runs_from_one_to_the_number_of_classes():
    eye = torch.eye(10).repeat(30, 1)  # confident, every class equally often
    assert class_probabilities_score(eye) == (pytest.approx(10.0), 10)
    assert class_probabilities_score(torch.full((50, 10), 0.1)) == (pytest.approx(1.0), 1)  # argmax ties: class 0
    collapsed = torch.zeros(100, 10)
    collapsed[:, 3] = 1.0
    assert class_probabilities_score(collapsed) == (pytest.approx(1.0), 1)


def test_gan_refuses_a_schedule_and_a_bad_prior():
    from dlmnist.nn import ConvDecoder, ConvEncoder

    g, d = ConvDecoder(latent_dim=8), ConvEncoder(latent_dim=1, latent_activation=False)
    with pytest.raises(ValueError, match="schedule=constant"):
        GAN(generator=g, discriminator=d, z_dim=8, optim=Optim(schedule="onecycle"))
    with pytest.raises(ValueError, match="prior"):
        GAN(generator=g, discriminator=d, z_dim=8, prior="cauchy")
    uniform = GAN(generator=g, discriminator=d, z_dim=8, prior="uniform")
    z = uniform.sample_z(1000)
    assert z.min() >= -1 and z.max() <= 1 and z.shape == (1000, 8)

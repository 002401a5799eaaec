"""The GAN: two optimizers through the real CLI, logged discriminator accuracies, sample grids, checkpoint reload,
every number of ``dlmnist gan-score`` under the package's own CNN, gradient statistics per player."""

from __future__ import annotations

import csv
import json
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn as nn

from dlmnist.analysis.gan_score import main as gan_score
from dlmnist.data.idx import read_idx
from dlmnist.data.sources import TEST_IMAGES, TRAIN_IMAGES
from dlmnist.models import GAN, Classifier, Optim
from dlmnist.sample_scores import class_probabilities_score

from .conftest import CONFIGS, run_cli


def test_gan_trains_logs_reloads_and_is_scored_by_the_packages_cnn(fake_data, mnist_dir, tmp_path):
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
        assert values and all(math.isfinite(v) for v in values), key
        if "acc" in key:  # a share of one batch of 32 images (3 training steps, 1 validation batch): k / 32
            assert all(v * 32 == round(v * 32) and 0 <= round(v * 32) <= 32 for v in values), (key, values)
    grads = {k.split(".")[0] for k in rows[0] if k.startswith("grad_norm/")}
    assert grads == {"grad_norm/generator", "grad_norm/discriminator"}  # each optimizer's step reports its player
    assert (run / "figures" / "val__reconstructions.png").is_file()  # real digits beside samples of the fixed z
    assert (run / "figures" / "samples_over_training.png").is_file()  # the fixed z's first ten samples per epoch

    gan = GAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    assert gan.sample(5).shape == (5, 1, 28, 28) and gan.fixed_z.shape == (64, 64)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert [o["param_groups"][0]["betas"] for o in state["optimizer_states"]] == [(0.5, 0.999)] * 2  # DCGAN's Adam

    run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), *common)  # the classifier that scores the samples
    cnn = tmp_path / "cnn" / "version_0" / "checkpoints" / "best.ckpt"
    gan_ckpt = run / "checkpoints" / "last.ckpt"
    argv = ["--gan", str(gan_ckpt), "--classifier", str(cnn), "--samples", "300", f"--data_dir={mnist_dir}"]
    assert gan_score(argv) == 0
    result = json.loads((run / "classifier_score.json").read_text())
    # the same 300 samples (seed 0), classified by the CNN on MNIST-standardised inputs, scored here by another
    # formula: exp(H(mean p) - mean H(p)) equals exp(mean KL(p || mean p)); coverage: classes with >= 3 argmaxes
    torch.manual_seed(0)
    generator = GAN.load_from_checkpoint(gan_ckpt, map_location="cpu").eval()
    classifier = Classifier.load_from_checkpoint(cnn, map_location="cpu").eval()
    samples = generator.sample(300)
    # the real images: 300 of the test set and 300 of the training set, drawn without replacement with seed 0
    g = torch.Generator().manual_seed(0)
    real = [read_idx(mnist_dir / "mnist" / name) for name in (TEST_IMAGES, TRAIN_IMAGES)]
    test, train = (x[torch.randperm(len(x), generator=g)[:300]].unsqueeze(1).float() / 255 for x in real)
    with torch.no_grad():
        p, p_test = (classifier((x - 0.1307) / 0.3081).softmax(dim=-1).double().numpy() for x in (samples, test))
        feats = [classifier.encoder((x - 0.1307) / 0.3081).double().numpy() for x in (test, samples, train)]

    def entropy(q):
        return -(q * np.log(np.where(q > 0, q, 1.0))).sum(axis=-1)

    def score(q):
        return math.exp(entropy(q.mean(axis=0)) - entropy(q).mean())

    def frechet(a, b):  # tr (S_a^1/2 S_b S_a^1/2)^1/2 from symmetric eigendecompositions (torchmetrics: eigvals)
        (ma, sa), (mb, sb) = ((f.mean(axis=0), np.cov(f, rowvar=False)) for f in (a, b))
        w, v = np.linalg.eigh(sa)
        root = (v * np.sqrt(w.clip(0))) @ v.T
        cross = np.sqrt(np.linalg.eigvalsh(root @ sb @ root).clip(0)).sum()
        return ((ma - mb) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * cross

    counts = np.bincount(p.argmax(axis=1), minlength=10)
    assert result == {
        "classifier_score": pytest.approx(score(p), rel=1e-6),
        "class_coverage": sum(counts >= 3),
        "class_share": pytest.approx((counts / 300).tolist()),
        "min_class_share": pytest.approx(counts.min() / 300),
        "fid": pytest.approx(frechet(feats[0], feats[1]), rel=1e-3, abs=1e-4),
        "real_classifier_score": pytest.approx(score(p_test), rel=1e-6),
        "real_fid": pytest.approx(frechet(feats[0], feats[2]), rel=1e-3, abs=1e-4),
        "samples": 300,
        "classifier": str(cnn),
    }

    # `dlmnist test` of the GAN with a scoring classifier: as many samples as test images, scored beside them
    scorer = f"--model.init_args.score_classifier={tmp_path}/cnn/version_*/checkpoints/best.ckpt"
    run_cli("test", "-c", str(CONFIGS / "gan.yaml"), *common, scorer, f"--ckpt_path={gan_ckpt}")
    tested = json.loads((run / "test_metrics.json").read_text())
    assert {"test/classifier_score", "test/fid", "test/class_coverage", "test/min_class_share"} <= set(tested)
    assert 1 <= tested["test/classifier_score"] <= 10 and tested["test/fid"] > 0
    seen = read_idx(fake_data / "fashion_mnist" / TEST_IMAGES).unsqueeze(1).float() / 255  # all 100: one eval batch
    with torch.no_grad():
        p_seen = classifier((seen - 0.1307) / 0.3081).softmax(dim=-1).double().numpy()
    assert tested["test/real_classifier_score"] == pytest.approx(score(p_seen), rel=1e-5)


def test_classifier_score_runs_from_one_to_the_number_of_classes():
    eye = torch.eye(10).repeat(30, 1)  # confident, every class equally often
    assert class_probabilities_score(eye) == (pytest.approx(10.0), 10)
    assert class_probabilities_score(torch.full((50, 10), 0.1)) == (pytest.approx(1.0), 1)  # argmax ties: class 0
    collapsed = torch.zeros(100, 10)
    collapsed[:, 3] = 1.0
    assert class_probabilities_score(collapsed) == (pytest.approx(1.0), 1)
    # confident samples, 198 of class 0 and 2 of class 1: the score is exp(H(p(y))); 2 of 200 is 1%: covered
    rare = torch.zeros(200, 10)
    rare[:198, 0] = rare[198:, 1] = 1.0
    h_marginal = -(0.99 * math.log(0.99) + 0.01 * math.log(0.01))
    assert class_probabilities_score(rare) == (pytest.approx(math.exp(h_marginal)), 2)
    rare[0] = torch.eye(10)[2]  # and 1 of 200 (0.5%) in class 2: not covered
    assert class_probabilities_score(rare)[1] == 2
    # each sample half sure: 0.5 on its class, 0.5 spread over the other nine; classes equally common
    half = torch.full((10, 10), 0.5 / 9) + torch.eye(10) * (0.5 - 0.5 / 9)
    h_each = -(0.5 * math.log(0.5) + 9 * (0.5 / 9) * math.log(0.5 / 9))
    assert class_probabilities_score(half) == (pytest.approx(math.exp(math.log(10) - h_each)), 10)


class _MeanLogit(nn.Module):
    """A fixed discriminator: the logit of "real" is an image's mean pixel minus 0.25."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).unsqueeze(1) - 0.25


def _constant_generator(value: float, z_dim: int) -> nn.Module:
    """Every z gives the image filled with ``value``."""
    g = nn.Sequential(nn.Linear(z_dim, 28 * 28), nn.Unflatten(1, (1, 28, 28)))
    with torch.no_grad():
        g[0].weight.zero_()
        g[0].bias.fill_(value)
    return g


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize("fake_value, fake_acc", [(0.0, 1.0), (0.5, 0.0)])
def test_gan_losses_and_discriminator_accuracies_by_hand(fake_value, fake_acc, monkeypatch):
    gan = GAN(generator=_constant_generator(fake_value, 8), discriminator=_MeanLogit(), z_dim=8)
    logged = {}

    def log_stage(stage, name, value, **_):
        logged[name] = float(value.detach())

    monkeypatch.setattr(gan, "log_stage", log_stage)
    means = [1.0, 0.5, 0.0, 0.2]  # real logits 0.75, 0.25, -0.25, -0.05: two of four called real
    x = torch.stack([torch.full((1, 28, 28), m) for m in means])
    total = gan.step((x, torch.zeros(4, dtype=torch.long)), "val", 0)
    real_logits, fake_logit = [m - 0.25 for m in means], fake_value - 0.25
    d_loss = sum(softplus(-v) for v in real_logits) / 4 + softplus(fake_logit)  # -log D(x) - log(1 - D(G(z)))
    g_loss = softplus(-fake_logit)  # -log D(G(z))
    assert logged == {"d_acc_real": 0.5, "d_acc_fake": fake_acc,
                      "d_loss": pytest.approx(d_loss), "g_loss": pytest.approx(g_loss)}  # fmt: skip
    assert float(total.detach()) == pytest.approx(d_loss + g_loss)


class _Snapshots(L.Callback):
    """The players' parameters before the fit and after every training batch."""

    def __init__(self) -> None:
        self.generator: list[list[torch.Tensor]] = []
        self.discriminator: list[list[torch.Tensor]] = []

    def _take(self, gan: GAN) -> None:
        self.generator.append([p.detach().clone() for p in gan.generator.parameters()])
        self.discriminator.append([p.detach().clone() for p in gan.discriminator.parameters()])

    def on_train_start(self, trainer, pl_module) -> None:
        self._take(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._take(pl_module)


def _changed(before: list[torch.Tensor], after: list[torch.Tensor]) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("pretrain, epochs, batches", [(2, 1, 4), (3, 2, 2)])
def test_discriminator_pretraining_leaves_the_generator_alone_for_its_batches(pretrain, epochs, batches):
    from dlmnist.nn import ConvDecoder, ConvEncoder

    torch.manual_seed(0)
    gan = GAN(generator=ConvDecoder(latent_dim=8, channels=[8, 4]), z_dim=8, d_pretrain_steps=pretrain,
              discriminator=ConvEncoder(channels=[4], latent_dim=1, latent_activation=False))
    images = torch.rand(batches * 8, 1, 28, 28)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(len(images))), 8)
    snapshots = _Snapshots()
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[snapshots], limit_val_batches=0)
    trainer.fit(gan, loader)
    steps = epochs * batches
    assert len(snapshots.generator) == steps + 1
    # batch k (from 1, counted across epochs) changes the generator only once k > d_pretrain_steps; the
    # discriminator steps on every batch
    g_moved = [_changed(snapshots.generator[k - 1], snapshots.generator[k]) for k in range(1, steps + 1)]
    d_moved = [_changed(snapshots.discriminator[k - 1], snapshots.discriminator[k]) for k in range(1, steps + 1)]
    assert g_moved == [k > pretrain for k in range(1, steps + 1)] and all(d_moved)
    opt_g, opt_d = trainer.optimizers  # Adam: one step for each batch of its player
    assert [opt.state[opt.param_groups[0]["params"][0]]["step"].item() for opt in (opt_g, opt_d)] == [
        steps - pretrain, steps]  # fmt: skip


def test_samples_of_the_fixed_z_are_kept_and_drawn_after_every_validation(tmp_path, monkeypatch):
    import dlmnist.models.gan as gan_module
    from dlmnist.nn import ConvDecoder, ConvEncoder

    drawn = []  # the row labels of each samples_over_training figure, in order

    def log_figure(trainer, key, fig):
        drawn.append((key, [ax.get_ylabel() for ax in fig.axes]))
        return real_log_figure(trainer, key, fig)

    real_log_figure = gan_module.log_figure
    monkeypatch.setattr(gan_module, "log_figure", log_figure)
    torch.manual_seed(0)
    gan = GAN(generator=ConvDecoder(latent_dim=8, channels=[8, 4]), z_dim=8,
              discriminator=ConvEncoder(channels=[4], latent_dim=1, latent_activation=False))
    images = torch.rand(64, 1, 28, 28)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(64)), 8)
    trainer = L.Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(gan, loader, loader)  # with the sanity check's validation, which draws nothing
    assert drawn == [("samples_over_training", ["epoch 0"]), ("samples_over_training", ["epoch 0", "epoch 1"])]
    assert (tmp_path / "figures" / "samples_over_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # ten samples per validation, as uint8 pixels; the newest row: the fixed z's first ten samples in eval mode
    assert [epoch for epoch, _ in gan.samples_over_training] == [0, 1]
    assert all(x.shape == (10, 1, 28, 28) and x.dtype == torch.uint8 for _, x in gan.samples_over_training)
    with torch.no_grad():
        newest = gan.eval().generator(gan.fixed_z[:10])
    assert torch.equal(gan.samples_over_training[-1][1], (newest * 255).round().byte())
    assert not torch.equal(gan.samples_over_training[0][1], gan.samples_over_training[1][1])  # it trained between
    trainer.save_checkpoint(tmp_path / "gan.ckpt")  # the rows travel with the checkpoint (a resumed fit goes on)
    reloaded = GAN.load_from_checkpoint(tmp_path / "gan.ckpt").samples_over_training
    assert [(e, x.tolist()) for e, x in reloaded] == [(e, x.tolist()) for e, x in gan.samples_over_training]


def test_gan_refuses_a_schedule_a_bad_prior_and_negative_pretraining():
    from dlmnist.nn import ConvDecoder, ConvEncoder

    g, d = ConvDecoder(latent_dim=8), ConvEncoder(latent_dim=1, latent_activation=False)
    with pytest.raises(ValueError, match="schedule=constant"):
        GAN(generator=g, discriminator=d, z_dim=8, optim=Optim(schedule="onecycle"))
    with pytest.raises(ValueError, match="prior"):
        GAN(generator=g, discriminator=d, z_dim=8, prior="cauchy")
    with pytest.raises(ValueError, match="d_pretrain_steps must be an integer >= 0, got -1"):
        GAN(generator=g, discriminator=d, z_dim=8, d_pretrain_steps=-1)
    uniform = GAN(generator=g, discriminator=d, z_dim=8, prior="uniform")
    z = uniform.sample_z(1000)
    assert z.shape == (1000, 8) and z.min() >= -1 and z.max() <= 1
    # fills [-1, 1]: mean 0 and variance 1/3 (a normal prior: variance 1, values beyond 1); 8,000 draws: std errors
    # of the mean and the variance about 0.006 and 0.003
    assert z.min() < -0.99 and z.max() > 0.99
    assert abs(z.mean().item()) < 0.03 and z.var().item() == pytest.approx(1 / 3, abs=0.02)
    normal = GAN(generator=g, discriminator=d, z_dim=8).sample_z(1000)
    assert normal.var().item() == pytest.approx(1.0, abs=0.06)



def test_the_averaged_generator_follows_the_trained_one_and_draws_every_sample(tmp_path):
    from dlmnist.nn import ConvDecoder, ConvEncoder

    torch.manual_seed(0)
    decay = 0.5
    gan = GAN(generator=ConvDecoder(latent_dim=8, channels=[8, 4]), z_dim=8, ema_decay=decay,
              discriminator=ConvEncoder(channels=[4], latent_dim=1, latent_activation=False))
    images = torch.rand(24, 1, 28, 28)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(24)), 8)
    snapshots = _Snapshots()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[snapshots], limit_val_batches=0)
    trainer.fit(gan, loader)
    # the average by hand: the first step's weights, then w <- decay w + (1 - decay) w_k after each later step
    expected = snapshots.generator[1]
    for weights in snapshots.generator[2:]:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights)]
    averaged = list(gan.generator_ema.module.parameters())
    assert not any(p.requires_grad for p in averaged)  # no optimizer's, no gradient
    assert all(torch.allclose(a, e, atol=1e-6) for a, e in zip(averaged, expected))
    assert _changed(list(gan.generator.parameters()), averaged)  # a different network from the trained one
    gan.eval()
    z = gan.fixed_z[:4]
    with torch.no_grad():
        assert torch.equal(gan.decode(z), gan.generator_ema.module(z))
        assert not torch.equal(gan.decode(z), gan.generator(z))
    trainer.save_checkpoint(tmp_path / "gan.ckpt")  # the average travels with the checkpoint
    reloaded = GAN.load_from_checkpoint(tmp_path / "gan.ckpt").eval()
    with torch.no_grad():
        assert torch.equal(reloaded.decode(z), gan.decode(z))
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\), got 1.0"):
        GAN(generator=ConvDecoder(latent_dim=8), discriminator=ConvEncoder(latent_dim=1), z_dim=8, ema_decay=1.0)


def test_a_conditional_gan_shows_both_players_the_label_and_samples_every_class():
    import torch.nn.functional as F

    from dlmnist.nn import ConvDecoder, ConvEncoder

    torch.manual_seed(0)
    g = ConvDecoder(latent_dim=8 + 10, channels=[8, 4])
    d = ConvEncoder(channels=[4], latent_dim=1, latent_activation=False, in_channels=1 + 10)
    seen: dict[str, list[torch.Tensor]] = {"g": [], "d": []}
    g.register_forward_pre_hook(lambda _, args: seen["g"].append(args[0].detach()))
    d.register_forward_pre_hook(lambda _, args: seen["d"].append(args[0].detach()))
    gan = GAN(generator=g, discriminator=d, z_dim=8, num_classes=10)
    x, y = torch.rand(6, 1, 28, 28), torch.tensor([3, 1, 4, 1, 5, 9])
    gan.step((x, y), "val", 0)
    one_hot = F.one_hot(y, 10).float()
    assert len(seen["g"]) == 1 and torch.equal(seen["g"][0][:, 8:], one_hot)  # the fakes: the real batch's digits
    assert len(seen["d"]) == 3  # real images, fakes for D's loss, fakes for G's loss: each beside its label's planes
    for inputs in seen["d"]:
        assert torch.equal(inputs[:, 1:], one_hot[:, :, None, None].expand(-1, -1, 28, 28))
    assert torch.equal(seen["d"][0][:, :1], x)
    seen["g"].clear()
    assert gan.eval().sample(12).shape == (12, 1, 28, 28)
    assert seen["g"][0][:, 8:].argmax(dim=1).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    with torch.no_grad():  # no label given: the logit of the digit under which the image looks most real
        per_class = torch.stack([gan(x, torch.full((6,), c)) for c in range(10)], dim=1)
        assert torch.equal(gan(x), per_class.amax(dim=1)) and per_class.std(dim=1).min() > 0
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        GAN(generator=g, discriminator=d, z_dim=8, num_classes=0)

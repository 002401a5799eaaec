"""Latent-space metrics on synthetic clusters whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from dlmnist.utils.latent_metrics import knn_accuracy, latent_metrics, pca_2d, silhouette


def clusters(distance: float, n: int = 300, dim: int = 2, seed: int = 0):
    """Three Gaussian clusters (unit variance per coordinate) centred at 0, distance*e1 and distance*e2."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.zeros(3, dim)
    centres[1, 0] = centres[2, 1] = distance
    labels = torch.arange(3).repeat_interleave(n)
    return centres[labels] + torch.randn(3 * n, dim, generator=g), labels


def test_far_apart_clusters():
    codes, labels = clusters(20.0)
    m = latent_metrics(codes, labels)
    assert m["spread"] == pytest.approx(math.sqrt(math.pi / 2), rel=0.05)  # mean norm of a 2-D standard normal
    assert m["separation"] == pytest.approx((20 + 20 + 20 * math.sqrt(2)) / 3, rel=0.02)
    assert m["ratio"] == pytest.approx(m["separation"] / m["spread"])
    assert m["silhouette"] > 0.85 and m["knn5_accuracy"] == 1.0 and m["linear_probe_accuracy"] == 1.0
    assert set(m["spread_per_class"]) == {0, 1, 2}


def test_identical_clusters_are_at_chance():
    codes, labels = clusters(0.0, n=400)
    m = latent_metrics(codes, labels)
    assert abs(m["silhouette"]) < 0.05 and m["knn5_accuracy"] < 0.45 and m["linear_probe_accuracy"] < 0.45
    assert m["separation"] < 0.3


def test_silhouette_matches_scikit_learn():
    from sklearn.metrics import silhouette_score  # scikit-learn is in the dev extras: no skip on a fresh install

    codes, labels = clusters(2.5, n=150, dim=5)
    assert silhouette(codes, labels, chunk=100) == pytest.approx(silhouette_score(codes, labels), abs=1e-6)


def test_knn_and_pca():
    train = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    y = torch.tensor([0, 0, 1, 1])
    assert knn_accuracy(train, y, torch.tensor([[0.05], [4.9]]), torch.tensor([0, 1]), k=1) == 1.0
    codes = torch.randn(500, 4) * torch.tensor([10.0, 1.0, 0.1, 0.1])
    p = pca_2d(codes)
    assert p.shape == (500, 2) and p[:, 0].std() > 5 * p[:, 1].std()


@pytest.mark.slow
def test_latent_callback_and_commands_on_a_trained_run(fake_data, tmp_path, capsys):
    import json

    from dlmnist.entry import main

    from .conftest import CONFIGS, run_cli

    common = ["-c", str(CONFIGS / "ae_conv.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist"]
    common += [f"--runs_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    run_cli("fit", *common, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2")
    run = tmp_path / "ae_conv" / "version_0"
    ckpt = run / "checkpoints" / "best.ckpt"
    run_cli("test", *common, f"--ckpt_path={ckpt}", "--trainer.callbacks+=dlmnist.callbacks.LatentSpace")
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert -1 <= metrics["test/latent_silhouette"] <= 1 and 0 <= metrics["test/latent_knn5_accuracy"] <= 1
    assert (run / "figures" / "test__latent_pca.png").is_file()

    with pytest.raises(SystemExit) as e:
        main(["latent", str(ckpt), "--no_tsne"])
    assert e.value.code == 0
    saved = json.loads((run / "latent_metrics.json").read_text())
    assert saved["num_codes"] == 100 and saved["latent_dim"] == 12 and "ae_conv/version_0" in capsys.readouterr().out
    assert (run / "figures" / "latent__pca.png").is_file()
    with pytest.raises(SystemExit) as e:
        main(["compare", str(ckpt), str(ckpt), "--titles", "a,b", "--out", str(tmp_path / "cmp.png")])
    assert e.value.code == 0 and (tmp_path / "cmp.png").stat().st_size > 1000


@pytest.mark.slow
def test_latent_of_a_vae_measures_the_posterior_mean_of_z(fake_data, tmp_path, capsys):
    import json

    from dlmnist.entry import main

    from .conftest import CONFIGS, run_cli

    common = ["-c", str(CONFIGS / "vae_2d.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist"]
    run_cli("fit", *common, f"--runs_dir={tmp_path}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2")
    run = tmp_path / "vae_2d" / "version_0"
    with pytest.raises(SystemExit) as e:
        main(["latent", str(run / "checkpoints" / "best.ckpt"), "--no_tsne"])
    assert e.value.code == 0 and "posterior mean of z" in capsys.readouterr().out
    assert json.loads((run / "latent_metrics.json").read_text())["latent_dim"] == 2  # z, not the 400 hidden units


def test_curves_command_reads_metrics_csv(tmp_path):
    from dlmnist.analysis.curves import main
    from dlmnist.runs import read_metrics
    from dlmnist.utils.curve_figure import epoch_axis

    run = tmp_path / "fewshot" / "version_0"
    run.mkdir(parents=True)
    rows = ["epoch,step,train/loss_epoch,train/acc,val/loss,val/acc", "0,0,2.3,0.1,,", "0,0,,,2.2,0.2", "1,1,1.1,0.6,,"]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "test_metrics.json").write_text('{"test/acc": 0.5, "test/loss": 1.5}')
    metrics = read_metrics(run)
    assert metrics["val/acc"] == [(0, 0, 0.2)] and metrics["train/loss_epoch"] == [(0, 0, 2.3), (1, 1, 1.1)]
    assert epoch_axis(metrics, "train/loss_epoch") == [1.0, 2.0]  # x in epochs: the end of each epoch
    assert main([str(run), "--out", str(tmp_path / "c.png")]) == 0 and (tmp_path / "c.png").is_file()

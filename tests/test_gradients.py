"""GradientStats: per-layer gradient norms and activation statistics reach metrics.csv; the figure; no hooks left."""

from __future__ import annotations

import csv
import math

import pytest
import torch.nn as nn

from dlmnist.callbacks import GradientStats

from .conftest import CONFIGS, run_cli


def fit_with_stats(config, fake_data, tmp_path, *extra):
    run_cli(
        "fit",
        "-c",
        str(CONFIGS / config),
        "--trainer.callbacks+=dlmnist.callbacks.GradientStats",
        "--trainer.callbacks.every_n_steps=2",
        f"--data.data_dir={fake_data}",
        "--data.dataset=fashion_mnist",
        "--data.batch_size=32",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=6",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        f"--runs_dir={tmp_path}",
        *extra,
    )
    (run,) = (tmp_path / config.split("/")[-1].removesuffix(".yaml")).glob("version_*")
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return run, rows


def test_every_layers_gradient_norm_and_activation_stats_land_in_metrics_csv(fake_data, tmp_path):
    run, rows = fit_with_stats("cnn.yaml", fake_data, tmp_path)
    grads = [k for k in rows[0] if k.startswith("grad_norm/")]
    # every conv / batch norm / linear layer of configs/cnn.yaml
    assert set(grads) == {f"grad_norm/{n}" for n in (
        "encoder.features.0.conv", "encoder.features.0.norm", "encoder.features.1.conv", "encoder.features.1.norm",
        "encoder.to_latent.2", "head.0")}
    logged = [r for r in rows if r["grad_norm/head.0"]]
    assert len(logged) == 3  # batches 0, 2, 4 of 6
    assert all(math.isfinite(float(r[g])) and float(r[g]) > 0 for r in logged for g in grads)
    zero = [float(r["activation/encoder.features.0.act/zero"]) for r in logged]
    assert all(0 < z < 1 for z in zero)  # ReLU zeroes part of its input, not all
    assert (run / "figures" / "train__grad_norm_by_layer.png").stat().st_size > 1000


def test_hooks_are_removed_after_fit_and_bad_values_refused():
    stats = GradientStats()
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    stats._handles.append(model[1].register_forward_hook(lambda *a: None))
    stats.figure = False
    stats.on_fit_end(None, model)
    assert not model[1]._forward_hooks
    with pytest.raises(ValueError, match="every_n_steps"):
        GradientStats(every_n_steps=0)


def test_report_columns_show_the_first_and_last_layers_gradient_norms(tmp_path):
    from dlmnist.report.tables import COMPUTED, Experiment

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    metrics = {"grad_norm/0": [(0, 0, 1e-5), (0, 50, 2e-5)], "grad_norm/2": [(0, 0, 0.7), (0, 50, 0.3)]}
    exp = Experiment("deep", tmp_path, metrics=metrics, model=model)
    assert COMPUTED["grad_first"][1](exp) == "1e-05 → 2e-05" and COMPUTED["grad_last"][1](exp) == "0.7 → 0.3"
    assert COMPUTED["grad_first"][1](Experiment("plain", tmp_path, model=model)) == "—"  # run without the callback

"""Batch size B against 2B: time and memory per step (StepStats), steps to a training loss, a step x-axis."""

from __future__ import annotations

import pytest

from dlmnist.runs import read_metrics
from dlmnist.utils.curve_figure import curves_figure, step_axis, steps_to

from .conftest import ROOT, run_cli

# two epochs of three steps: a per-step loss after every step, an epoch loss at each epoch's end
METRICS = {
    "train/loss_step": [(0, 0, 2.0), (0, 1, 1.0), (0, 2, 0.9), (1, 3, 0.4), (1, 4, 0.6), (1, 5, 0.2)],
    "train/loss_epoch": [(0, 2, 1.3), (1, 5, 0.4)],
}


def test_step_axis_puts_epoch_values_at_the_epochs_last_step():
    assert step_axis(METRICS, "train/loss_step") == [1, 2, 3, 4, 5, 6]
    assert step_axis(METRICS, "train/loss_epoch") == [3, 6]


def test_steps_to_a_loss_with_and_without_smoothing():
    assert steps_to(METRICS, "train/loss_step", 0.5) == 4  # the first single value at or below 0.5
    assert steps_to(METRICS, "train/loss_step", 0.5, window=2) == 5  # (0.4 + 0.6) / 2 at step 5
    assert steps_to(METRICS, "train/loss_step", 0.5, window=3) == 6  # (0.4 + 0.6 + 0.2) / 3
    assert steps_to(METRICS, "train/loss_step", 0.1) is None
    assert steps_to(METRICS, "val/loss", 0.5) is None


def test_curves_figure_over_steps():
    fig = curves_figure([("", METRICS, {})], x="step")
    assert fig.axes[0].get_xlabel() == "step"
    assert max(fig.axes[0].lines[0].get_xdata()) == 6


def test_batch_2b_run_logs_time_and_memory_per_step_and_curves_count_steps(mnist_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    for config, name in (("configs/mlp.yaml", "b"), ("configs/batch_study/batch_256.yaml", "b2")):
        run_cli("fit", "-c", str(ROOT / config), f"--data.data_dir={mnist_dir}", f"--runs_dir={runs}",
                f"--name={name}", "--trainer.max_epochs=2", "--trainer.limit_train_batches=3",
                "--trainer.limit_val_batches=1", "--trainer.log_every_n_steps=1")
    metrics = {name: read_metrics(runs / name / "version_0") for name in ("b", "b2")}
    for m in metrics.values():
        assert [e for e, _, _ in m["perf/step_ms"]] == [0, 1]  # once per epoch
        assert all(v > 0 for col in ("perf/step_ms", "perf/images_per_s", "perf/peak_mem_mb") for _, _, v in m[col])
    # images per second = batch size / median step time
    for name, batch in (("b", 128), ("b2", 256)):
        (_, _, ms), (_, _, ips) = metrics[name]["perf/step_ms"][0], metrics[name]["perf/images_per_s"][0]
        assert ips == pytest.approx(batch / (ms / 1000), rel=1e-6)
    capsys.readouterr()
    out = tmp_path / "curves.png"
    with pytest.raises(SystemExit) as done:
        run_cli("curves", str(runs / "b" / "version_0"), str(runs / "b2" / "version_0"), "--x", "step",
                "--target_loss", "100", "--window", "1", "--out", str(out))
    assert done.value.code == 0 and out.is_file()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("train/loss_step (mean of 1) <= 100: step 1 (epoch 0.33)")
    with pytest.raises(SystemExit):
        run_cli("curves", str(runs / "b2" / "version_0"), "--target_loss", "0", "--out", str(out))
    assert "<= 0: never" in capsys.readouterr().out

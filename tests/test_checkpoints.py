"""Checkpoints written by the real CLI, and errors that name what is wrong (every config reloads: test_configs.py)."""

from __future__ import annotations

import pytest
import torch

from dlmnist.config import model_from_config

from .conftest import CONFIGS, EXPERIMENT_CONFIGS, run_cli

EXPERIMENTS = EXPERIMENT_CONFIGS


def fit_one_step(config, data_dir, runs, extra=()) -> dict:
    run_cli(
        "fit",
        "-c",
        str(config),
        *extra,
        f"--data.data_dir={data_dir}",
        f"--runs_dir={runs}",
        "--trainer.max_steps=1",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
    )
    return sorted(runs.rglob("last.ckpt"))[-1]


def test_weights_of_another_architecture_name_the_mismatched_layer(mnist_dir, tmp_path):
    first, second = CONFIGS / "cnn.yaml", CONFIGS / "lenet5.yaml"  # two classifiers of different architectures
    state = torch.load(fit_one_step(first, mnist_dir, tmp_path), weights_only=False)["state_dict"]
    other = model_from_config(second)
    with pytest.raises(RuntimeError, match=r"(size mismatch for|Missing key\(s\)|Unexpected key\(s\)).*\w+\.\w+"):
        other.load_state_dict(state)


@pytest.mark.parametrize("command", ["test", "validate", "predict", "fit"])
def test_a_checkpoint_path_that_does_not_exist_is_named(command, tmp_path, capsys):
    missing = tmp_path / "no" / "such.ckpt"
    with pytest.raises(SystemExit) as e:
        run_cli(command, "-c", str(EXPERIMENTS[0]), f"--runs_dir={tmp_path}", f"--ckpt_path={missing}")
    assert e.value.code != 0 and str(missing) in capsys.readouterr().err

"""Checkpoints written by the real CLI reload, for every experiment config, and errors name what is wrong."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils._pytree import tree_leaves

from dlmnist.config import model_from_config

from .conftest import CONFIGS, EXPERIMENT_CONFIGS, config_id, run_cli

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


@pytest.mark.slow
@pytest.mark.parametrize("config", EXPERIMENTS, ids=config_id)
def test_every_model_reloads_with_load_from_checkpoint_and_gives_the_same_outputs(
    config, mnist_dir, tmp_path, prerequisite_runs
):
    ckpt = fit_one_step(config, mnist_dir, tmp_path, prerequisite_runs(config))
    reloaded = L.LightningModule.load_from_checkpoint(ckpt, map_location="cpu").eval()  # class from the checkpoint
    built = model_from_config(config)
    built.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"])
    built.eval()
    assert type(reloaded) is type(built)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.manual_seed(0)
        a = tree_leaves(reloaded(x))
        torch.manual_seed(0)
        b = tree_leaves(built(x))
    assert len(a) == len(b) > 0
    assert all(torch.equal(u, v) for u, v in zip(a, b) if isinstance(u, torch.Tensor))


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

"""Two processes on the CPU (DDP, gloo) through configs/trainer/ddp_cpu.yaml, started as a user starts them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from dlmnist.data import MNISTDataModule

from .conftest import CONFIGS, ROOT, run_cli


def dlmnist(*args: str, returncode: int = 0) -> None:
    """The console script in a new process (DDP re-launches the same command for the second process)."""
    exe = ROOT / ".venv" / "bin" / "dlmnist"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dlmnist.cli"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == returncode, done.stderr[-3000:]


@pytest.mark.slow
def test_ddp_shards_the_epoch_and_the_test_accuracy_matches_one_process(fake_data, tmp_path):
    common = [
        "-c",
        str(CONFIGS / "cnn.yaml"),
        f"--data.data_dir={fake_data}",
        "--data.dataset=fashion_mnist",
        "--data.batch_size=32",
        f"--runs_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    ddp = ["-c", str(CONFIGS / "trainer" / "ddp_cpu.yaml")]
    record = [
        "--trainer.callbacks+=tests.fault_callbacks.RecordTrainingImages",
        f"--trainer.callbacks.folder={tmp_path}",
    ]
    dlmnist("fit", *common, *ddp, "--trainer.max_epochs=1", *record)

    # each process saw a disjoint shard, and together the whole training split, once
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist")
    dm.setup("fit")
    every = sorted(dm.train_x.flatten(1).double().sum(1).tolist())
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(s["world_size"] == 2 for s in shards)
    seen = [s["seen"]["0"] for s in shards]
    assert abs(len(seen[0]) - len(seen[1])) <= 1
    assert sorted(seen[0] + seen[1]) == pytest.approx(every)
    assert not set(seen[0]) & set(seen[1])

    # the logged epoch loss is the mean over both processes' batches, not rank 0's alone
    run = tmp_path / "cnn" / "version_0"
    with open(run / "metrics.csv") as f:
        logged = [float(r["train/loss_epoch"]) for r in csv.DictReader(f) if r["train/loss_epoch"]]
    both = sum(s["loss_sum"]["0"] for s in shards) / len(every)
    rank0 = shards[0]["loss_sum"]["0"] / len(seen[0])
    assert logged == [pytest.approx(both, rel=1e-5)] and rank0 != pytest.approx(both, rel=1e-5)

    assert sorted(p.name for p in (tmp_path / "cnn").iterdir()) == ["version_0"]  # both processes: one run
    ckpt = str(run / "checkpoints" / "last.ckpt")
    dlmnist("test", *common, *ddp, f"--ckpt_path={ckpt}")
    run_cli("test", *common, f"--ckpt_path={ckpt}")
    two = json.loads((run / "test" / "test_metrics.json").read_text())
    one = json.loads((run / "test-2" / "test_metrics.json").read_text())
    assert two["test/acc"] == one["test/acc"]  # synced counts: exact
    assert two["test/loss"] == pytest.approx(one["test/loss"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["ae_conv.yaml", "vae.yaml"])  # classifiers: the test above
def test_ddp_epoch_losses_of_every_model_family_cover_both_processes(config, fake_data, tmp_path):
    """The base's one logging rule: an epoch mean under DDP is the mean over every process's batches."""
    dlmnist(
        "fit",
        "-c",
        str(CONFIGS / config),
        "-c",
        str(CONFIGS / "trainer" / "ddp_cpu.yaml"),
        f"--data.data_dir={fake_data}",
        "--data.dataset=fashion_mnist",
        "--data.batch_size=32",
        f"--runs_dir={tmp_path}",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks+=tests.fault_callbacks.RecordTrainingImages",
        f"--trainer.callbacks.folder={tmp_path}",
    )
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    images = sum(len(s["seen"]["0"]) for s in shards)
    with open(tmp_path / config.removesuffix(".yaml") / "version_0" / "metrics.csv") as f:
        logged = [float(r["train/loss_epoch"]) for r in csv.DictReader(f) if r["train/loss_epoch"]]
    both = sum(s["loss_sum"]["0"] for s in shards) / images
    assert logged == [pytest.approx(both, rel=1e-5)]

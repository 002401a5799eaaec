"""Weights & Biases through the real wandb client, offline or disabled (no account, no network)."""

from __future__ import annotations

import time

import pytest
import wandb

from .conftest import CONFIGS, run_cli
from .test_resume import common

WANDB = ["-c", str(CONFIGS / "logger" / "wandb.yaml")]


@pytest.fixture(autouse=True)
def fresh_wandb():
    """wandb keeps its settings (WANDB_MODE included) in a process-wide singleton: start each test afresh."""
    wandb.teardown()
    yield
    wandb.teardown()


def test_offline_run_writes_metrics_and_images_locally_and_ends(fake_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = common(fake_data, tmp_path, *WANDB)
    run_cli("fit", *args, "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.log_every_n_steps=1")
    assert wandb.run is None  # finished with the command
    run_cli("test", *args, "--ckpt_path=last")
    assert wandb.run is None
    wandb.teardown()
    folder = tmp_path / "cnn" / "version_0" / "wandb"

    def records() -> list[bytes]:
        return [p.read_bytes() for p in sorted(folder.glob("offline-run-*/run-*.wandb"))]

    def written() -> bool:
        found = records()
        return len(found) == 2 and any(b"val/acc" in r for r in found) and any(b"test/acc" in r for r in found)

    deadline = time.monotonic() + 120  # wandb's service process may still be writing the files after finish()
    while not written() and time.monotonic() < deadline:  # on a loaded machine it can take a while
        time.sleep(0.2)
    # one W&B run per command; told apart by content: both folders may carry the same second in their names
    found = records()
    assert len(found) == 2
    fit, test = sorted(found, key=lambda r: b"train/loss_step" not in r)
    assert b"train/loss_step" in fit and b"val/acc" in fit and b"test/acc" not in fit
    assert b"test/acc" in test and b"train/loss_step" not in test
    assert list(folder.glob("offline-run-*/files/media/images/test/confusion_matrix_*.png"))


def test_disabled_needs_no_account(fake_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run_cli("fit", *common(fake_data, tmp_path, *WANDB), "--trainer.max_steps=2")
    assert (tmp_path / "cnn" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    assert not list(tmp_path.rglob("offline-run-*"))


def test_the_wandb_run_is_finished_when_training_raises(fake_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    crash = ["--trainer.callbacks+=tests.fault_callbacks.RaiseAtStep", "--trainer.callbacks.step=2"]
    with pytest.raises(RuntimeError, match="injected crash"):
        run_cli("fit", *common(fake_data, tmp_path, *WANDB, "--trainer.max_steps=6", *crash))
    assert wandb.run is None
    assert list((tmp_path / "cnn" / "version_0" / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.fixture
def no_account(tmp_path, monkeypatch):
    """No W&B key here: no WANDB_API_KEY, no ~/.netrc, no WANDB_MODE (set empty: restored after the test, also
    when Lightning sets it for an offline logger)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.setenv("WANDB_API_KEY", "")


@pytest.mark.parametrize("given", [[], ["--trainer.logger.offline=false"], ["--trainer.logger.init_args.mode=online"]])
def test_online_without_an_account_is_refused_in_one_line_before_any_folder(given, no_account, fake_data, tmp_path,
                                                                           capsys):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:
        run_cli("fit", *common(fake_data, runs, *WANDB, *given, "--trainer.max_steps=2"))
    assert e.value.code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("dlmnist: error: W&B logs online and no W&B account is set up")
    assert "WANDB_API_KEY" in errors[0] and "--trainer.logger.offline=true" in errors[0]
    assert not runs.exists()


def test_offline_given_is_offline_without_an_account(no_account, fake_data, tmp_path):
    run_cli("fit", *common(fake_data, tmp_path, *WANDB, "--trainer.logger.offline=true", "--trainer.max_steps=2"))
    assert list((tmp_path / "cnn" / "version_0" / "wandb").glob("offline-run-*"))

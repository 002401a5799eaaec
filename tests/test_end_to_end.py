"""End to end on the real MNIST files: a short training run of configs/cnn.yaml, then test and reload."""

from __future__ import annotations

import json

import pytest
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.models import Classifier

from .conftest import CONFIGS, run_cli


@pytest.mark.slow
def test_cnn_learns_real_mnist_and_reloads(mnist_dir, tmp_path):
    common = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}"]
    run_cli(
        "fit",
        *common,
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=60",
        "--trainer.limit_val_batches=2",
        "--trainer.enable_progress_bar=false",
    )
    ckpt = tmp_path / "cnn" / "version_0" / "checkpoints" / "last.ckpt"
    run_cli("test", *common, f"--ckpt_path={ckpt}", "--trainer.enable_progress_bar=false")
    acc = json.loads((ckpt.parent.parent / "test_metrics.json").read_text())["test/acc"]
    assert acc > 0.9, f"60 batches of the default CNN should be far above chance, got {acc}"

    model = Classifier.load_from_checkpoint(ckpt).eval()  # rebuilt from the saved class_path/init_args
    dm = MNISTDataModule(data_dir=str(mnist_dir))
    dm.setup("test")
    x, y = dm.test_x[:2000], dm.test_y[:2000]
    with torch.no_grad():
        reloaded_acc = (model(x).argmax(-1) == y).float().mean().item()
    assert reloaded_acc > 0.9

"""The logged training and validation accuracies of a real fit (the per-config sweep is tests/test_configs.py)."""

from __future__ import annotations

import pytest
import torch


def test_logged_accuracies_count_the_epochs_own_batches_only(fake_data, tmp_path):
    import csv

    from dlmnist.data import MNISTDataModule
    from dlmnist.models import Classifier

    from .conftest import CONFIGS, run_cli

    data = [f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist", "--data.batch_size=32"]
    common = ["-c", str(CONFIGS / "cnn.yaml"), *data, f"--runs_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    run_cli("fit", *common, "--trainer.max_epochs=2")  # the sanity check, then two epochs: one metric each time
    run = tmp_path / "cnn" / "version_0"
    with open(run / "metrics.csv") as f:
        val = [float(r["val/acc"]) for r in csv.DictReader(f) if r["val/acc"]]
    model = Classifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt").eval()
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", batch_size=32)
    dm.setup("fit")
    with torch.no_grad():
        hits = [(model(x).argmax(-1) == y).sum().item() for x, y in dm.val_dataloader()]
    assert len(val) == 2
    # the last weights on this pass only: not mixed with the sanity check or the first epoch
    assert val[-1] == pytest.approx(sum(hits) / len(dm.val_dataloader().x), abs=1e-6)


def test_train_accuracy_is_the_hits_of_the_epochs_own_training_batches(fake_data, tmp_path):
    """train/acc is counted by hand (not a torchmetrics update): each epoch's value covers that epoch's batches."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from dlmnist.data import MNISTDataModule
    from dlmnist.models import Classifier
    from dlmnist.nn import ConvEncoder

    class Recording(Classifier):
        def on_fit_start(self) -> None:
            self.epochs: list[list[tuple[int, int]]] = []

        def on_train_epoch_start(self) -> None:
            self.epochs.append([])

        def classify(self, logits, y, stage):
            if stage == "train":
                self.epochs[-1].append((int((logits.argmax(-1) == y).sum()), len(y)))
            return super().classify(logits, y, stage)

    torch.manual_seed(0)
    model = Recording(encoder=ConvEncoder(channels=[4], kernel_sizes=[3], latent_dim=16))
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", batch_size=16)
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=5, limit_val_batches=0, logger=CSVLogger(tmp_path, name="", version=""),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, dm)
    import csv

    with open(tmp_path / "metrics.csv") as f:
        logged = [float(r["train/acc"]) for r in csv.DictReader(f) if r.get("train/acc")]
    expected = [sum(h for h, _ in e) / sum(n for _, n in e) for e in model.epochs]
    assert [len(e) for e in model.epochs] == [5, 5] and len({round(v, 6) for v in expected}) == 2
    assert logged == pytest.approx(expected, abs=1e-6)


def test_an_optim_given_in_python_is_saved_as_a_dict_and_read_back():
    """Lightning's loggers cannot write a frozen dataclass: a model built in Python keeps its Optim as a dict."""
    from dlmnist.models import Classifier
    from dlmnist.models.optim import Optim
    from dlmnist.nn import ConvEncoder

    encoder = ConvEncoder(channels=[4], kernel_sizes=[3], latent_dim=16)
    model = Classifier(encoder=encoder, optim=Optim(lr=0.01, name="sgd"))
    assert model.hparams["optim"] == model.hparams_initial["optim"] == {**vars(Optim()), "lr": 0.01, "name": "sgd"}
    again = Classifier(encoder=encoder, optim=model.hparams["optim"])  # what load_from_checkpoint passes
    assert again.optim == Optim(lr=0.01, name="sgd")


def test_the_test_curve_is_the_test_set_after_every_epoch(fake_data, tmp_path):
    """TestCurve (configs/cnn_ae_encoder.yaml): one test accuracy per epoch, the last that of the last weights."""
    import csv

    import lightning as L

    from dlmnist.callbacks import TestCurve
    from dlmnist.data import MNISTDataModule
    from dlmnist.models import AutoEncoder, Classifier
    from dlmnist.nn import DenseDecoder, DenseEncoder

    from .conftest import CONFIGS, run_cli

    data = [f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist", "--data.batch_size=32"]
    common = ["-c", str(CONFIGS / "cnn_ae_encoder.yaml"), *data, f"--runs_dir={tmp_path}"]
    run_cli("fit", *common, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false")
    run = tmp_path / "cnn_ae_encoder" / "version_0"
    with open(run / "metrics.csv") as f:
        test = [float(r["test/acc_epoch"]) for r in csv.DictReader(f) if r["test/acc_epoch"]]
    model = Classifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt").eval()
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", normalize=False)
    dm.setup("test")
    with torch.no_grad():
        hits = sum((model(x).argmax(-1) == y).sum().item() for x, y in dm.test_dataloader())
    assert len(test) == 2 and test[-1] == pytest.approx(hits / len(dm.test_y), abs=1e-6)
    ae = AutoEncoder(DenseEncoder(latent_dim=4), DenseDecoder(latent_dim=4))
    with pytest.raises(ValueError, match="TestCurve draws a classifier's test curve; AutoEncoder is none"):
        TestCurve().setup(L.Trainer(logger=False), ae, "fit")

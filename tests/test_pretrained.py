"""Starting an encoder from another run's checkpoint: frozen means frozen, mismatches and missing files are named."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.models import AutoEncoder, Classifier, EncoderCheckpointError, Optim, load_encoder
from dlmnist.nn import ConvDecoder, ConvEncoder

from .conftest import CONFIGS, run_cli


def small_encoder(latent_dim: int = 6) -> ConvEncoder:
    # batch norm and dropout: both behave differently in train mode, so eval mode is visible in the results
    return ConvEncoder(channels=[4, 8], latent_dim=latent_dim, latent_activation=False, dropout=0.3)


def fit(model: L.LightningModule, data_dir, tmp_path, steps: int = 3, callbacks=()) -> L.Trainer:
    dm = MNISTDataModule(data_dir=str(data_dir), dataset="fashion_mnist", normalize=False, batch_size=32)
    trainer = L.Trainer(
        max_steps=steps,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.fixture
def classifier_ckpt(fake_data, tmp_path):
    """A real checkpoint of a classifier trained a few steps (batch norm statistics moved away from 0/1)."""
    trainer = fit(Classifier(small_encoder(), optim=Optim(schedule="constant")), fake_data, tmp_path)
    path = tmp_path / "classifier.ckpt"
    trainer.save_checkpoint(path)
    return path


class EncoderModes(L.Callback):
    """Record, at every training step, whether any encoder module is in train mode."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(any(m.training for m in pl_module.encoder.modules()))
        assert pl_module.decoder.training


def test_frozen_encoder_is_bit_identical_and_in_eval_mode_while_decoder_learns(classifier_ckpt, fake_data, tmp_path):
    source = torch.load(classifier_ckpt, weights_only=False)["state_dict"]
    model = AutoEncoder(
        small_encoder(),
        ConvDecoder(6, [8, 4], feature_size=7),
        optim=Optim(schedule="constant", weight_decay=0.1),  # decoupled weight decay would move any parameter held
        encoder_checkpoint=str(classifier_ckpt),
        freeze_encoder=True,
    )
    decoder_before = copy.deepcopy(model.decoder.state_dict())
    modes = EncoderModes()
    trainer = fit(model, fake_data, tmp_path, steps=5, callbacks=[modes])

    assert len(modes.seen) == 5 and not any(modes.seen), "an encoder module was in train mode during training"
    assert not any(m.training for m in model.encoder.modules())
    for name, tensor in model.encoder.state_dict().items():  # parameters and batch-norm buffers
        assert torch.equal(tensor, source[f"encoder.{name}"]), f"encoder.{name} changed"
    held = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert not held & {id(p) for p in model.encoder.parameters()}
    changed = [n for n, t in model.decoder.state_dict().items() if not torch.equal(t, decoder_before[n])]
    assert len(changed) == len(decoder_before), "every decoder tensor should have moved"


def test_fine_tuned_encoder_starts_from_the_checkpoint(classifier_ckpt):
    encoder = small_encoder()
    load_encoder(encoder, str(classifier_ckpt))
    source = torch.load(classifier_ckpt, weights_only=False)["state_dict"]
    assert all(torch.equal(t, source[f"encoder.{n}"]) for n, t in encoder.state_dict().items())
    model = Classifier(small_encoder(), encoder_checkpoint=str(classifier_ckpt))
    assert all(p.requires_grad for p in model.parameters())


def test_mismatched_encoder_names_the_layer_and_both_shapes(classifier_ckpt):
    with pytest.raises(
        EncoderCheckpointError,
        match=r"encoder\.to_latent\.2\.weight has shape \(6, 392\) in the "
        r"checkpoint but \(7, 392\) in the configured encoder",
    ):
        load_encoder(small_encoder(latent_dim=7), str(classifier_ckpt))


def test_glob_picks_the_newest_version(tmp_path, classifier_ckpt):
    from dlmnist.models.pretrained import resolve_checkpoint

    for v in (2, 10, 9):
        (tmp_path / f"version_{v}").mkdir()
        (tmp_path / f"version_{v}" / "best.ckpt").write_bytes(classifier_ckpt.read_bytes())
    assert resolve_checkpoint(str(tmp_path / "version_*" / "best.ckpt")).parent.name == "version_10"
    with pytest.raises(EncoderCheckpointError, match="no file matches"):
        resolve_checkpoint(str(tmp_path / "nothing_*" / "best.ckpt"))


@pytest.mark.slow
def test_cli_start_up_errors_name_the_path_or_the_layer(mnist_dir, tmp_path, capsys):
    common = [f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path}", "--trainer.fast_dev_run=true"]
    short = ["--trainer.max_steps=1", "--trainer.limit_val_batches=1"]  # fast_dev_run writes no checkpoint
    run_cli("fit", "-c", str(CONFIGS / "cnn.yaml"), *common[:2], *short)  # encoder with a 256-d code, not the AE's 12
    cnn_ckpt = tmp_path / "cnn" / "version_0" / "checkpoints" / "last.ckpt"
    config = str(CONFIGS / "decoder_frozen.yaml")
    for ckpt, message in [
        (tmp_path / "no" / "such.ckpt", f"encoder_checkpoint {tmp_path / 'no' / 'such.ckpt'}: no such file"),
        (cnn_ckpt, r"encoder\.to_latent\.2\.weight has shape \(256, 800\) in the checkpoint but \(12, 800\)"),
    ]:
        with pytest.raises(SystemExit) as e:
            run_cli("fit", "-c", config, *common, f"--model.init_args.encoder_checkpoint={ckpt}")
        assert e.value.code == 2
        assert __import__("re").search(message, capsys.readouterr().err)


@pytest.mark.slow
def test_cross_run_checkpoints_follow_runs_dir_and_a_refused_start_writes_nothing(mnist_dir, tmp_path, capsys):
    short = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
             "--trainer.enable_progress_bar=false", f"--data.data_dir={mnist_dir}"]
    empty = tmp_path / "empty"
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "-c", str(CONFIGS / "fewshot_transfer.yaml"), *short, f"--runs_dir={empty}")
    assert e.value.code == 2 and f"{empty}/ae_conv/version_*" in capsys.readouterr().err
    assert not empty.exists() or not any(empty.rglob("*"))  # no version folder left behind

    runs = tmp_path / "runs"
    run_cli("fit", "-c", str(CONFIGS / "ae_conv.yaml"), *short, f"--runs_dir={runs}")
    run_cli("fit", "-c", str(CONFIGS / "fewshot_transfer.yaml"), *short, f"--runs_dir={runs}")
    saved = (runs / "fewshot_transfer" / "version_0" / "config.yaml").read_text()
    assert f"encoder_checkpoint: {runs}/ae_conv/version_*/checkpoints/best.ckpt" in saved

"""StackedAutoEncoder: the phase schedule, what each phase trains, resuming mid-run, before/after test metrics."""

from __future__ import annotations

import csv
import json
import re

import lightning as L
import pytest
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.models import Optim, StackedAutoEncoder
from dlmnist.models.phases import build_schedule, phase_index
from dlmnist.nn import DenseStack

from .conftest import CONFIGS, run_cli


def test_schedule_labels_epochs_and_scratch_budget():
    phases = build_schedule(3, True, [2, 1, 1], 2, 3)
    labels = ["pretrain layer 1/3", "pretrain layer 2/3", "pretrain layer 3/3", "head", "finetune"]
    assert [p.label for p in phases] == labels
    assert [phase_index(phases, e) for e in range(9)] == [0, 0, 1, 2, 3, 3, 4, 4, 4]
    scratch = build_schedule(3, False, [2, 1, 1], 2, 3)
    assert [(p.kind, p.epochs) for p in scratch] == [("finetune", 9)]  # same total epochs, from random init
    assert [p.kind for p in build_schedule(2, True, [1, 1], 0, 1)] == ["pretrain", "pretrain", "finetune"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pretrain_epochs": [1, 1]}, "pretrain_epochs has 2 entries but there are 3 layers"),
        ({"pretrain_epochs": 0}, "pretrain_epochs must be a positive integer"),
        ({"corruption": 1.0}, "corruption"),
        ({"finetune_epochs": 0, "pretrain": False}, "finetune_epochs"),
        ({"head_lr": 0}, "head_lr"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StackedAutoEncoder(DenseStack([16, 8, 4]), **kwargs)


class Snapshots(L.Callback):
    """The state dict at the start and the end of every training epoch."""

    def __init__(self) -> None:
        self.start, self.end = {}, {}

    def _copy(self, module):
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_epoch_start(self, trainer, module):
        self.start[trainer.current_epoch] = self._copy(module)

    def on_train_epoch_end(self, trainer, module):
        self.end[trainer.current_epoch] = self._copy(module)


def _changed(before: dict, after: dict) -> set[str]:
    return {k.rsplit(".", 1)[0] for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.slow
def test_each_phase_changes_only_its_own_parameters(fake_data, tmp_path):
    torch.manual_seed(0)
    model = StackedAutoEncoder(
        DenseStack([32, 16, 8], dropout=0.1),
        pretrain_epochs=1,
        head_epochs=1,
        finetune_epochs=1,
        optim=Optim(weight_decay=0.01),
    )
    data = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", batch_size=64, download=False)
    snaps = Snapshots()
    trainer = L.Trainer(
        max_epochs=5, limit_train_batches=3, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[snaps], default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    layer = {k: f"encoder.layers.{k - 1}.0" for k in (1, 2, 3)}
    decoder = {k: f"decoders.{k - 1}" for k in (1, 2, 3)}
    for k in (1, 2, 3):  # epoch k-1 pretrains layer k: earlier (and later) layers stay bit-identical
        assert _changed(snaps.start[k - 1], snaps.end[k - 1]) == {layer[k], decoder[k]}, k
    assert _changed(snaps.start[3], snaps.end[3]) == {"head.0"}  # head only, on the frozen stack
    assert _changed(snaps.start[4], snaps.end[4]) == {*layer.values(), "head.0"}  # fine-tuning: not the decoders
    assert model.before_finetune is not None  # the head-phase weights, kept for test/acc_before_finetune
    for name, value in model.before_finetune.items():
        assert torch.equal(value, snaps.end[3][name])


def _read_phases(path) -> dict[int, float]:
    rows = [r for r in csv.DictReader(path.open()) if r.get("phase")]
    return {int(r["epoch"]): float(r["phase"]) for r in rows}


@pytest.mark.slow
def test_resume_continues_the_right_phase_and_test_reports_before_and_after(fake_data, tmp_path):
    common = [
        "-c", str(CONFIGS / "sae.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist",
        f"--runs_dir={tmp_path}", "--model.encoder.init_args.hidden=[32, 16]", "--model.pretrain_epochs=1",
        "--model.head_epochs=1", "--model.finetune_epochs=2", "--trainer.max_epochs=5", "--data.batch_size=64",
        "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
    ]
    run_cli("fit", *common, "--trainer.limit_train_batches=2", "--trainer.max_steps=6")  # stops after the head phase
    run = tmp_path / "sae" / "version_0"
    interrupted = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert interrupted["stacked_ae"]["label"] == "head" and interrupted["stacked_ae"]["before_finetune"] is None
    assert _read_phases(run / "metrics.csv") == {0: 0.0, 1: 1.0, 2: 2.0}

    run_cli("fit", *common, "--trainer.limit_train_batches=2", "--ckpt_path=last")
    assert _read_phases(run / "resume" / "metrics.csv") == {3: 3.0, 4: 3.0}  # fine-tuning, not pretraining again
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["stacked_ae"]["label"] == "finetune"
    before = final["stacked_ae"]["before_finetune"]
    assert before.keys() == {k for k in interrupted["state_dict"] if k.startswith(("encoder.", "head."))}
    assert all(torch.equal(v, interrupted["state_dict"][k]) for k, v in before.items())

    run_cli("test", *common, "--ckpt_path=last")
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {"test/acc", "test/acc_before_finetune", "test/acc_after_finetune"} <= set(metrics)
    assert metrics["test/acc"] == metrics["test/acc_after_finetune"]
    reloaded = StackedAutoEncoder.load_from_checkpoint(run / "checkpoints" / "last.ckpt")  # rebuilt from hparams
    assert reloaded.phase.label == "finetune" and reloaded.before_finetune.keys() == before.keys()
    assert reloaded.encoder.latent_dim == 16  # the stack, reusable as an encoder elsewhere

    other = StackedAutoEncoder(DenseStack([32, 16]), pretrain_epochs=2, head_epochs=1, finetune_epochs=2)
    with pytest.raises(ValueError, match="saved in phase 'head' at epoch 2, but this schedule"):
        other.on_load_checkpoint(interrupted)  # another schedule would resume in the wrong phase: refused


def test_max_epochs_must_match_the_schedule(fake_data, tmp_path, capsys):
    args = ["-c", str(CONFIGS / "sae.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist"]
    with pytest.raises(SystemExit) as e:  # a usage error, as for any refused argument: no traceback
        run_cli("fit", *args, f"--runs_dir={tmp_path}", "--trainer.max_epochs=3")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"trainer.max_epochs=3 does not match .* set trainer.max_epochs=\d+", err)
    assert "Traceback" not in err
    assert not any(tmp_path.rglob("*.ckpt")) and not any(tmp_path.rglob("metrics.csv"))  # nothing half-written


def test_a_trainer_built_in_python_is_checked_too(fake_data):
    from dlmnist.config import model_from_config

    model = model_from_config(CONFIGS / "sae.yaml")
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist")
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="trainer.max_epochs=3 does not match"):
        trainer.fit(model, dm)

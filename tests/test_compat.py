"""Every private attribute dlmnist.compat reads, read against the installed Lightning, jsonargparse, submitit and
torch: an attribute that disappears upstream fails here instead of silently turning a check off."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import DataLoader, TensorDataset

from dlmnist import compat
from dlmnist.cli import DLMNISTCLI, Resolved
from tests.conftest import CONFIGS


class Tiny(L.LightningModule):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)
        self.seen: dict = {}

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_step=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        trainer = compat.attached_trainer(self)
        self.seen = {
            "trainer": trainer,
            "logs": compat.logs_this_step(trainer),
            "loader": compat.combined_loader(trainer),
            "logged": compat.step_logged_values(trainer),
            "bar": compat.train_progress_bar(trainer.progress_bar_callback),
        }

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class ApplyLoaderStates(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        compat.apply_loader_states(trainer)  # a no-op on a fresh fit, but the method must exist


def test_lightning_attributes_read_during_a_real_fit(tmp_path):
    model = Tiny()
    assert compat.attached_trainer(model) is None and compat.given_hyperparameters() is None
    hparams, initial = compat.hparams_dicts(model)
    assert hparams["width"] == 3 and initial["width"] == 3
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, default_root_dir=tmp_path,
                        callbacks=[TQDMProgressBar(), ApplyLoaderStates()], log_every_n_steps=1)
    data = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    trainer.fit(model, data)
    seen = model.seen
    assert seen["trainer"] is trainer and seen["logs"] is True and seen["loader"] is not None
    assert seen["bar"] is not None
    assert set(seen["logged"]) == {"train/loss"} and seen["logged"]["train/loss"].numel() == 1
    ckpt = tmp_path / "x.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)
    before = state["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"]
    compat.uncount_stepped_batch(state)
    assert state["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] == before - 1


def test_a_modules_compiled_state():
    model = Tiny()
    assert compat.is_compiled(model) is False
    model.compile(backend="eager")  # records the compiled call; nothing is compiled until the first forward
    assert compat.is_compiled(model) is True


def test_wandb_run_is_read_and_forgotten_without_starting_one(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert compat.wandb_run(logger) is None
    logger._experiment = "run"  # noqa: SLF001 (what WandbLogger.experiment stores)
    assert compat.wandb_run(logger) == "run"
    compat.forget_wandb_run(logger)
    assert compat.wandb_run(logger) is None


def test_lightning_cli_parsers_and_the_two_overridden_methods():
    class Parse(DLMNISTCLI):
        resolve_only = True

    cli = Parse.__new__(Parse)
    with pytest.raises(Resolved):
        Parse.__init__(cli, args=["fit", "-c", str(CONFIGS / "cnn.yaml")])
    assert set(compat.subcommand_parsers(cli)) == {"fit"}  # only the named command's parser is built
    assert set(LightningCLI.subcommands()) == {"fit", "validate", "test", "predict"}
    names = compat.option_names(compat.subcommand_parsers(cli)["fit"])
    assert "--trainer.max_epochs" in names and "--runs_dir" in names
    for name in ("_parse_ckpt_path", "_run_subcommand"):  # LightningCLIHooks overrides these
        assert callable(getattr(LightningCLI, name))


def test_submitit_and_torch_attributes():
    params = compat.slurm_parameters()
    assert {"partition", "time", "gpus_per_node"} <= params
    assert isinstance(compat.onednn_bf16_supported(), bool)


def test_hyper_parameters_marked_as_the_clis_load_through_its_instantiator(tmp_path):
    from lightning.pytorch.core.saving import _ALLOWED_INSTANTIATORS

    assert compat.CLI_INSTANTIATOR in _ALLOWED_INSTANTIATORS
    model = Tiny(width=5)
    compat.mark_cli_built(model.hparams, Tiny)
    assert model.hparams["_class_path"].endswith(".Tiny")
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "t.ckpt")
    again = L.LightningModule.load_from_checkpoint(tmp_path / "t.ckpt")  # the class comes from _class_path
    assert type(again) is Tiny and again.hparams.width == 5


def test_lightning_export_mode_lets_a_module_without_trainer_be_traced():
    model = Tiny()
    with pytest.raises(RuntimeError, match="not attached"):
        model.trainer  # noqa: B018
    with compat.lightning_export_mode():
        assert model.trainer is None
        torch.jit.trace(model.layer, torch.zeros(1, 4))

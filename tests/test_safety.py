"""Reproducibility, a stop on a non-finite loss, and W&B runs that always end: the real CLI on fake IDX data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from .conftest import run_cli
from .test_resume import common, last


def fit(fake_data: Path, runs: Path, *extra: str) -> Path:
    run_cli("fit", *common(fake_data, runs, "--trainer.max_steps=8", "--trainer.log_every_n_steps=1", *extra))
    return sorted((runs / "cnn").glob("version_*"))[-1]


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers(fake_data, tmp_path):
    a, b = fit(fake_data, tmp_path / "a"), fit(fake_data, tmp_path / "b")
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    wa, wb = last(tmp_path / "a")["state_dict"], last(tmp_path / "b")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert yaml.safe_load((a / "config.yaml").read_text())["seed_everything"] == 42

    c = fit(fake_data, tmp_path / "c", "--seed_everything=7")
    assert yaml.safe_load((c / "config.yaml").read_text())["seed_everything"] == 7
    wc = last(tmp_path / "c")["state_dict"]
    assert any(not torch.equal(wa[k], wc[k]) for k in wa if wa[k].is_floating_point())
    assert (a / "metrics.csv").read_text() != (c / "metrics.csv").read_text()


def test_a_random_seed_is_written_into_the_saved_config(fake_data, tmp_path):
    run_cli("fit", *common(fake_data, tmp_path, "--seed_everything=true", "--trainer.max_steps=1"))
    seed = yaml.safe_load((tmp_path / "cnn" / "version_0" / "config.yaml").read_text())["seed_everything"]
    assert isinstance(seed, int) and not isinstance(seed, bool)


def test_nan_loss_stops_naming_step_and_loss_and_keeps_the_last_good_checkpoint(fake_data, tmp_path, capsys):
    poison = ["--trainer.callbacks+=tests.fault_callbacks.PoisonAtStep", "--trainer.callbacks.step=5"]
    with pytest.raises(SystemExit) as e:
        run_cli("fit", *common(fake_data, tmp_path, "--trainer.max_steps=20", "--checkpoint_every_n_steps=2", *poison))
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "non-finite loss at global step 5" in err and "train/loss=nan" in err
    good = last(tmp_path)
    assert good["global_step"] == 4  # written at step 4, not replaced by the broken state
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())

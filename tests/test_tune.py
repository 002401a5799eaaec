"""dlmnist tune: specs, pruning through a real Trainer, and a tiny SQLite search that is interrupted and resumed."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
import yaml

from dlmnist.cli import call_cli
from dlmnist.tune.search import main as tune_main
from dlmnist.tune.search import trial_callbacks
from dlmnist.tune.spec import load_spec

from .conftest import CONFIGS, ROOT

SPECS = sorted((CONFIGS / "search").glob("*.yaml"))


def fake_args(data_dir) -> list[str]:
    return [
        f"--data.data_dir={data_dir}",
        "--data.dataset=fashion_mnist",
        "--data.batch_size=64",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=1",
        "--trainer.enable_progress_bar=false",
    ]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_search_spec_resolves_to_a_valid_config(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # specs name configs relative to the project root
    spec = load_spec(path.relative_to(ROOT))
    assert spec.monitor()[0].startswith("val/")
    trial = optuna.create_study().ask()
    _, printed = call_cli(["fit", *spec.cli_args(spec.suggest(trial)), "--print_config"])
    config = yaml.safe_load(printed)
    for key, value in spec.decode(trial.params).items():  # each searched value lands where the spec says
        node = config
        for part in key.split("."):
            node = node[part] if part in node else node["init_args"][part]  # model.optim.lr is model.init_args.optim.lr
        assert node == value, key


def test_pruning_callback_reports_each_epoch_and_stops_the_run(fake_data, tmp_path):
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    trial = study.ask()
    args = ["fit", "-c", str(CONFIGS / "cnn.yaml"), f"--runs_dir={tmp_path}", "--trainer.max_epochs=3"]
    with pytest.raises(optuna.TrialPruned):
        call_cli([*args, *fake_args(fake_data)], callbacks=trial_callbacks(trial, "val/acc"))
    frozen = study.trials[0]
    assert list(frozen.intermediate_values) == [0]  # stopped after the first epoch's validation
    assert frozen.user_attrs["run_dir"].startswith(str(tmp_path))


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU")
def test_a_setting_the_machine_cannot_honour_stops_the_search_with_its_reason(fake_data, tmp_path, capsys):
    """The first trial fails (Optuna logs it as failed) and the search stops there with exit 2, not after each."""
    spec = tmp_path / "gpu.yaml"
    spec.write_text(yaml.safe_dump({"config": str(CONFIGS / "cnn.yaml"), "trials": 3, "epochs": 1, "pruner": False}))
    argv = [str(spec), "--runs_dir", str(tmp_path / "runs"), "--", *fake_args(fake_data), "--trainer.accelerator=gpu"]
    assert tune_main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("dlmnist tune: error: trainer.accelerator=gpu: no GPU on this machine"), err
    storage = f"sqlite:///{tmp_path / 'runs' / 'tune' / 'gpu' / 'study.db'}"
    assert [t.state.name for t in optuna.load_study(study_name="gpu", storage=storage).trials] == ["FAIL"]
    assert not list((tmp_path / "runs" / "tune" / "gpu").glob("trial_*"))  # no run folder left behind


@pytest.mark.slow
def test_tiny_search_with_sqlite_is_resumed_and_tests_the_best_once(fake_data, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "config": str(CONFIGS / "cnn.yaml"),
                "trials": 2,
                "epochs": 1,
                "params": {
                    "model.optim.lr": {"low": 1e-3, "high": 1e-2, "log": True},
                    "model.encoder.init_args.channels": {"choices": [[8, 16], [16, 16]]},
                },
                "pruner": False,
            }
        )
    )
    runs = tmp_path / "runs"
    argv = [str(spec), "--runs_dir", str(runs), "--", *fake_args(fake_data)]
    assert tune_main(argv) == 0
    db = runs / "tune" / "tiny" / "study.db"
    storage = f"sqlite:///{db}"
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 2

    optuna.load_study(study_name="tiny", storage=storage).ask()  # a trial left RUNNING, as by a killed session
    assert tune_main([str(spec), "--trials", "3", "--runs_dir", str(runs), "--", *fake_args(fake_data)]) == 0
    study = optuna.load_study(study_name="tiny", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert [t.number for t in complete] == [0, 1, 3]  # continued the same study; the interrupted one is not counted
    assert len({(t.params["model.optim.lr"], t.params["model.encoder.init_args.channels"]) for t in complete}) == 3
    for t in complete:
        assert (runs / "tune" / "tiny" / f"trial_{t.number:03d}" / "version_0" / "checkpoints" / "best.ckpt").is_file()

    best = json.loads((runs / "tune" / "tiny" / "best.json").read_text())
    assert best["n_complete"] == 3 and best["best_trial"] == study.best_trial.number
    assert best["value"] == pytest.approx(study.best_value) and best["metric"] == "val/acc"
    assert isinstance(best["params"]["model.encoder.init_args.channels"], list)
    run = runs / "tune" / "tiny" / f"trial_{best['best_trial']:03d}" / "version_0"
    assert best["test_metrics"] == json.loads((run / "test_metrics.json").read_text())
    tested = sorted((runs / "tune" / "tiny").glob("trial_*/version_*/test_metrics.json"))
    assert run / "test_metrics.json" in tested and len(tested) <= 2  # once per finished search, on its best trial


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study_and_finish_its_budget_together(fake_data, tmp_path):
    import subprocess
    import sys

    spec = tmp_path / "shared.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "config": str(CONFIGS / "cnn.yaml"),
                "trials": 4,
                "epochs": 1,
                "params": {"model.optim.lr": {"low": 1e-3, "high": 1e-2, "log": True}},
                "pruner": False,
            }
        )
    )
    runs, storage = tmp_path / "runs", f"sqlite:///{tmp_path / 'shared.db'}"
    argv = [str(spec), "--storage", storage, "--study", "shared", "--runs_dir", str(runs)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "dlmnist", "tune", *argv, "--worker", str(k), "--", *fake_args(fake_data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in (0, 1)
    ]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs[0][-3000:] + outs[1][-3000:]

    study = optuna.load_study(study_name="shared", storage=storage)
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # the budget is met once, by both together (two unshared studies would make 8); a trial two workers
    # finish at the same moment may add one
    assert 4 <= len(complete) <= 5 and states.count(optuna.trial.TrialState.COMPLETE) == len(states)
    assert len({t.params["model.optim.lr"] for t in complete}) == len(complete)  # no draw run twice
    for t in complete:  # every trial ran once, in a folder of its own, by one of the two workers
        trial_dir = runs / "tune" / "shared" / f"trial_{t.number:03d}"
        assert [p.name for p in trial_dir.iterdir()] == ["version_0"]
        assert (trial_dir / "version_0" / "checkpoints" / "best.ckpt").is_file()
        assert t.user_attrs["worker"].rsplit(":", 1)[1] in {str(w.pid) for w in workers}
    per_worker = {w.pid: sum(t.user_attrs["worker"].endswith(f":{w.pid}") for t in complete) for w in workers}
    print("trials per worker:", per_worker)
    best = json.loads((runs / "tune" / "shared" / "best.json").read_text())
    assert best["best_trial"] == study.best_trial.number and best["test_metrics"]

"""``dlmnist tune SPEC``: an Optuna search over the arguments a spec names, selected on the validation metric.

Each trial is an ordinary ``dlmnist fit`` (run folder ``runs/tune/<study>/trial_<n>/version_0``, logged
to W&B too when the config turns it on), scored by the best value of the model's validation monitor;
hopeless trials are pruned per epoch (Optuna MedianPruner). The study lives in a local SQLite file by
default (``runs/tune/<study>/study.db``), or in any Optuna storage URL (``--storage
postgresql://...``) so that several workers can share it (distributed mode: the same command in
several processes or cluster jobs, each with its own ``--worker`` number; docs/cluster.md); running the
command again resumes it until ``trials`` trials are complete or pruned, counted over every worker.
Then the best trial's checkpoint is evaluated once on the test set, and ``runs/tune/<study>/best.json``
holds the result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import time
from pathlib import Path

import optuna
from lightning.pytorch.callbacks import LambdaCallback
from optuna.trial import TrialState
from optuna_integration.pytorch_lightning import PyTorchLightningPruningCallback

from dlmnist.cli import call_cli
from dlmnist.cli.errors import SetupError
from dlmnist.runs import read_json
from dlmnist.tune.spec import SearchSpec, load_spec
from dlmnist.utils.files import atomic_write_text

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
WORKER_SEED_STEP = 100_003  # sampler seed offset between the workers of one study


def open_study(spec: SearchSpec, name: str, storage: str, direction: str, worker: int = 0) -> optuna.Study:
    """Create the study, or load it when it exists (another session's, or another worker's)."""
    from sqlalchemy.exc import SQLAlchemyError

    pruner = optuna.pruners.MedianPruner(**spec.pruner) if spec.pruner is not None else optuna.pruners.NopPruner()
    engine = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else None  # workers wait for the lock
    # Kept: RDBStorage creates its tables unguarded (3 processes opening a fresh SQLite file together: 8 of 24
    # failed, "table ... already exists" / UNIQUE alembic_version); JournalStorage has no such race but no heartbeat
    for attempt in range(5):  # workers starting together race to create the tables and the study: retry
        try:
            storage_obj = optuna.storages.RDBStorage(
                storage, engine_kwargs=engine, heartbeat_interval=60, grace_period=180  # stale trials -> FAIL
            )
            study = optuna.create_study(
                study_name=name, storage=storage_obj, direction=direction, pruner=pruner, load_if_exists=True
            )
            break
        except SQLAlchemyError:
            if attempt == 4:
                raise
            time.sleep(1 + attempt)
    # a resumed study must not replay the first session's random draws: offset the seed by the trials so far;
    # workers sharing the study draw from seeds of their own (TPE's constant liar keeps them apart afterwards)
    study.sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed + len(study.trials) + WORKER_SEED_STEP * worker)
    return study


def trial_callbacks(trial: optuna.Trial, metric: str) -> list:
    """Optuna's pruning callback (reports ``metric`` after each validation, raises ``optuna.TrialPruned`` when the
    pruner says so) and one that records the trial's run folder on the trial."""
    record = LambdaCallback(on_fit_start=lambda trainer, _: trial.set_user_attr("run_dir", trainer.default_root_dir))
    return [PyTorchLightningPruningCallback(trial, monitor=metric), record]


def objective(spec: SearchSpec, name: str, runs_dir: Path, extra: list[str], metric: str):
    def run_trial(trial: optuna.Trial) -> float:
        args = spec.cli_args(spec.suggest(trial)) + extra
        args += [f"--name=tune/{name}/trial_{trial.number:03d}", f"--runs_dir={runs_dir}"]
        trial.set_user_attr("args", args)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        cli, _ = call_cli(["fit", *args], callbacks=trial_callbacks(trial, metric))
        score = cli.trainer.checkpoint_callback.best_model_score
        if score is None or not math.isfinite(float(score)):
            raise RuntimeError(f"trial {trial.number}: no finite best validation score ({score})")
        return float(score)

    return run_trial


def test_best(study: optuna.Study) -> dict:
    """Evaluate the best trial's best.ckpt on the test set, once per best trial (remembered in the study)."""
    best = study.best_trial
    done = study.user_attrs.get("test") or {}
    if done.get("trial") == best.number:
        return done["metrics"]
    run = Path(best.user_attrs.get("run_dir", ""))
    ckpt = run / "checkpoints" / "best.ckpt"
    if not ckpt.is_file():
        print(f"[tune] best trial {best.number} ran elsewhere ({ckpt} is not here): test it on that machine")
        return {}
    call_cli(["test", *best.user_attrs["args"], f"--ckpt_path={ckpt}"])
    metrics = read_json(run / "test_metrics.json")
    study.set_user_attr("test", {"trial": best.number, "metrics": metrics})
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlmnist tune", description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="search spec, e.g. configs/search/cnn.yaml")
    p.add_argument("--trials", type=int, default=None, help="total trials to reach (default: the spec's)")
    p.add_argument("--study", default=None, help="study name (default: the spec's file stem)")
    p.add_argument(
        "--storage", default=None, help="Optuna storage URL (default: sqlite:///<runs_dir>/tune/<study>/study.db)"
    )
    p.add_argument("--runs_dir", default="runs", help="folder of run folders (default: %(default)s)")
    p.add_argument(
        "--worker",
        type=int,
        default=0,
        help="distributed mode, several processes or jobs on one --storage: this worker's number (0, 1, ...), "
        "which gives it a sampler seed of its own (docs/cluster.md)",
    )
    p.epilog = "Arguments after -- go to every run: dlmnist ... -- -c configs/trainer/gpu.yaml --data.batch_size=512"
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    a, extra = p.parse_args(argv[:cut]), argv[cut + 1 :]
    try:
        spec = load_spec(a.spec)
        metric, mode = spec.monitor()
    except (OSError, ValueError) as e:
        p.error(str(e))
    if not metric.startswith("val/"):
        p.error(f"the model selects checkpoints on {metric}; a search must select on a validation metric")
    name, runs_dir = a.study or spec.name, Path(a.runs_dir)
    folder = runs_dir / "tune" / name
    folder.mkdir(parents=True, exist_ok=True)
    storage = a.storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    study = open_study(spec, name, storage, "maximize" if mode == "max" else "minimize", a.worker)
    total = a.trials or spec.trials
    finished = len(study.get_trials(deepcopy=False, states=DONE))
    if finished < total:
        print(f"[tune] study {name} ({storage}), worker {a.worker}: {finished} of {total} trials done")
        # after each trial: stop once the finished trials and those other workers are running reach the budget
        stop = optuna.study.MaxTrialsCallback(total, states=(*DONE, TrialState.RUNNING))
        try:
            study.optimize(objective(spec, name, runs_dir, extra, metric), n_trials=total - finished, callbacks=[stop])
        except SetupError as e:  # e.g. -- --trainer.accelerator=gpu without a GPU: every trial would stop there
            print(f"dlmnist tune: error: {e}", file=sys.stderr)
            return 2
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED)}
    best = study.best_trial
    test = test_best(study)
    result = {
        "study": name,
        "storage": storage,
        "spec": str(a.spec),
        "metric": metric,
        "direction": study.direction.name.lower(),
        "n_complete": counts["complete"],
        "n_pruned": counts["pruned"],
        "best_trial": best.number,
        "value": best.value,
        "params": spec.decode(best.params),
        "run_dir": best.user_attrs.get("run_dir"),
        "test_metrics": test,
    }
    atomic_write_text(folder / "best.json", json.dumps(result, indent=2) + "\n")
    summary = f"{counts['complete']} complete, {counts['pruned']} pruned"
    print(f"[tune] {summary}; best trial {best.number}: {metric} = {best.value:.4f}")
    print(f"[tune] params {result['params']}")
    print(f"[tune] test (once, on the best trial's best.ckpt): {test}; written to {folder / 'best.json'}")
    return 0

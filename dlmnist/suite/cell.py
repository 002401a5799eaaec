"""One cell of the suite: its key, its fit and its test in this process, and the record it leaves (``suite.json``).

Shared by the sequential suite (``runner.py``) and the jobs of ``--launcher local|slurm`` (``jobs.py``).
"""

from __future__ import annotations

import hashlib
import shlex
import time
from pathlib import Path

from dlmnist import runs
from dlmnist.cli import RunFailed, call_cli
from dlmnist.config import dump
from dlmnist.ledger import record as ledger
from dlmnist.suite.graph import Node

__all__ = ["RunFailed", "call_cli", "finish", "fit", "node_key", "test"]


def node_key(fit_args: list[str], dep_keys: list[str], test: str | None) -> str:
    """SHA-256 (16 hex digits) of the resolved config, the keys of the runs it needs and the checkpoint tested."""
    resolved = dump(overrides=fit_args)
    return hashlib.sha256("\n".join([resolved, *dep_keys, f"test={test}"]).encode()).hexdigest()[:16]


def fit(node: Node, args: list[str], key: str, quick: bool, info: dict | None = None) -> Path:
    """``dlmnist fit ARGS``; the run folder it wrote (its own answer), with ``suite.json`` in it."""
    import torch

    started, start = ledger.utc(), time.perf_counter()
    cli, _ = call_cli(["fit", *args])
    seconds = time.perf_counter() - start
    run = Path(cli.run_dir)
    if not run.is_dir():
        raise RunFailed(f"dlmnist fit wrote nothing into {run}")
    record = {
        "name": node.name,
        "key": key,
        "status": "fit",
        "quick": quick,
        "fit_command": "dlmnist fit " + shlex.join(args),
        "fit_seconds": round(seconds, 1),
        "machine": ledger.describe(ledger.machine()),
        "experiment": node.experiment,
        "threads": torch.get_num_threads(),
        "started": started,
        **(info or {}),
    }
    runs.write_record(run, record)
    return run


def test(node: Node, run: Path, args: list[str]) -> None:
    argv = [*args, f"--ckpt_path={run / 'checkpoints' / f'{node.test}.ckpt'}"]
    start = time.perf_counter()
    call_cli(["test", *argv])
    record = runs.suite_record(run)
    record.update(test_command="dlmnist test " + shlex.join(argv), test_seconds=round(time.perf_counter() - start, 1))
    record.update(finished=ledger.utc())
    runs.write_record(run, record)


def finish(run: Path) -> None:
    """Mark the run done; a run of a full (not --quick) suite tested on the whole test set adds its record to the
    ledger beside runs/."""
    record = runs.suite_record(run)
    if not record.get("quick") and "test_seconds" in record:
        if runs.read_json(run / "test_metrics.json").get("partial"):
            print(f"[suite] {run}: tested on part of the test set, so no ledger record", flush=True)
        else:
            ledger.append(ledger.build(run), ledger.default_path(run.parents[1]))
    runs.write_record(run, {**record, "status": "done"})

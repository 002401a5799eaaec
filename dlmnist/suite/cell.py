"""One cell of the suite: its key, its fit and its test in this process, and the record it leaves (``suite.json``).

Shared by the sequential suite (``runner.py``) and the jobs of ``--launcher local|slurm`` (``jobs.py``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path

from dlmnist import runs
from dlmnist.cli import RunFailed, call_cli
from dlmnist.config import dump
from dlmnist.suite.graph import Node

__all__ = ["RunFailed", "call_cli", "fit", "machine", "node_key", "test"]


def node_key(fit_args: list[str], dep_keys: list[str], test: str | None) -> str:
    """SHA-256 (16 hex digits) of the resolved config, the keys of the runs it needs and the checkpoint tested."""
    resolved = dump(overrides=fit_args)
    return hashlib.sha256("\n".join([resolved, *dep_keys, f"test={test}"]).encode()).hexdigest()[:16]


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"


def fit(node: Node, args: list[str], key: str, quick: bool, info: dict | None = None) -> Path:
    """``dlmnist fit ARGS``; the run folder it wrote (its own answer), with ``suite.json`` in it."""
    start = time.perf_counter()
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
        "machine": machine(),
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
    record.update(status="done", finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    runs.write_record(run, record)

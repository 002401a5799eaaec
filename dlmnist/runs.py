"""Run folders, ``runs/<name>/version_<n>/``: the one module that chooses, claims, finds and reads them.

A command claims its folder with ``mkdir`` (atomic: two processes started together never share one) and
releases what it made when it ends with the folder still empty (a failed command, a ``fast_dev_run``), so no
empty run folder is left behind. The suite claims the folder of a job before it submits it and hands it to
the job (:func:`use_folder`), so it never predicts which folder a command will pick. The files of a run:
``config.yaml``, ``metrics.csv``, ``test_metrics.json``, ``checkpoints/`` and the suite's ``suite.json``.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from dlmnist.utils.files import Metrics, atomic_write_text

SUITE_FILE = "suite.json"  # written by `dlmnist suite` into each run it made: key, commands, wall times
RUN_ENV = "DLMNIST_RUN_FOLDER"  # the first process's run folder and log subfolder, inherited by DDP processes

_given: contextvars.ContextVar[Optional[Path]] = contextvars.ContextVar("dlmnist_run_folder", default=None)


# ---- choosing and claiming ---------------------------------------------------------------------------------
def versions(base: Path) -> list[Path]:
    """``base/version_<n>`` folders, oldest first."""
    found = [p for p in Path(base).glob("version_*") if p.is_dir() and re.fullmatch(r"version_\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def claim(path: Path) -> list[Path]:
    """Create ``path`` as this process's own (FileExistsError when another process made it first); the folders
    made, deepest first, for :func:`release`."""
    made = [p for p in (path, *path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    return made


def release(made: list[Path]) -> None:
    """Remove the folders :func:`claim` made, deepest first, as long as they are empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def new_version(base: Path) -> tuple[Path, list[Path]]:
    """Claim the next free ``base/version_<n>``: (the folder, the folders made)."""
    while True:
        found = versions(base)
        run = Path(base) / f"version_{int(found[-1].name.split('_')[1]) + 1 if found else 0}"
        try:
            return run, claim(run)
        except FileExistsError:
            continue


def free_subdir(run: Path, tag: str) -> tuple[str, list[Path]]:
    """Claim ``<run>/<tag>``, else ``<tag>-2``, ``<tag>-3``, ...: (its name, the folders made)."""
    name, k = tag, 1
    while True:
        try:
            return name, claim(run / name)
        except FileExistsError:
            k += 1
            name = f"{tag}-{k}"


@contextlib.contextmanager
def use_folder(run: Path) -> Iterator[None]:
    """Within this block, the next fresh ``fit`` writes into ``run`` (claimed beforehand by the suite)."""
    token = _given.set(Path(run))
    try:
        yield
    finally:
        _given.reset(token)


def first_process() -> bool:
    """False in the processes a DDP launch adds (each runs the whole command)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def newest_checkpoint(base: Path, which: str) -> Path:
    for version in reversed(versions(base)):
        ckpt = version / "checkpoints" / f"{which}.ckpt"
        if ckpt.exists():
            return ckpt
    raise FileNotFoundError(f"--ckpt_path {which}: no run under {base} has checkpoints/{which}.ckpt")


def run_of(ckpt: Path) -> Optional[Path]:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/x.ckpt``), None for one elsewhere."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None


def open_run(base: Path, ckpt: Optional[Path], command: str) -> tuple[Path, str, list[Path]]:
    """The folder a command writes into: (run, log subfolder, folders made).

    A fresh fit: a new version (or the folder given by :func:`use_folder`); a command on a checkpoint of a run:
    that run, with its logs in a new subfolder named after the command (``resume`` for a fit). The processes a
    DDP launch adds take the first process's folders (``DLMNIST_RUN_FOLDER``), or the newest run.
    """
    if not first_process():
        if RUN_ENV in os.environ:
            run, _, sub = os.environ[RUN_ENV].partition("\n")
            return Path(run), sub, []
        found = versions(base)
        return (found[-1] if found else base / "version_0"), "", []
    run = run_of(ckpt) if ckpt is not None else None
    sub, made = "", []
    if run is not None:
        sub, made = free_subdir(run, "resume" if command == "fit" else command)
    elif (given := _given.get()) is not None:
        run, made = given, [] if given.is_dir() else claim(given)
        if not made and any(given.iterdir()):
            raise FileExistsError(f"run folder {given} is not empty")
        made = made or [given]
    else:
        run, made = new_version(base)
    os.environ[RUN_ENV] = f"{run}\n{sub}"
    return run, sub, made


# ---- reading -----------------------------------------------------------------------------------------------
def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def read_metrics(run: Path, name: str = "metrics.csv") -> Metrics:
    """``run/metrics.csv`` as ``{column: [(epoch, step, value), ...]}`` for every numeric, non-empty cell."""
    path = Path(run) / name
    columns: Metrics = {}
    if not path.is_file():
        return columns
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                epoch, step = int(float(row.get("epoch") or 0)), int(float(row.get("step") or 0))
            except ValueError:
                continue
            for key, cell in row.items():
                if key in ("epoch", "step") or cell in ("", None):
                    continue
                try:
                    columns.setdefault(key, []).append((epoch, step, float(cell)))
                except ValueError:
                    pass
    return columns


def read_test(run: Path) -> dict[str, float]:
    """The numbers of ``run/test_metrics.json`` ({} when there is none)."""
    data = read_json(Path(run) / "test_metrics.json")
    return {k: float(v) for k, v in data.items() if k.startswith("test/") and isinstance(v, (int, float))}


# ---- the suite's record ------------------------------------------------------------------------------------
def suite_record(run: Path) -> dict[str, Any]:
    return read_json(Path(run) / SUITE_FILE)


def write_record(run: Path, record: dict) -> None:
    atomic_write_text(Path(run) / SUITE_FILE, json.dumps(record, indent=2) + "\n")


def find_suite_run(base: Path, key: str) -> Optional[Path]:
    """The newest run of ``base`` the suite made with this key (finished or at least fitted)."""
    for run in reversed(versions(base)):
        if suite_record(run).get("key") == key:
            return run
    return None


def pick_run(base: Path) -> Optional[Path]:
    """The run a report shows: the newest the suite finished, else the newest tested, else the newest fitted."""
    runs = list(reversed(versions(base)))
    for good in (
        lambda r: suite_record(r).get("status") == "done",
        lambda r: (r / "test_metrics.json").is_file(),
        lambda r: (r / "metrics.csv").is_file(),
    ):
        for run in runs:
            if good(run):
                return run
    return None

"""A ledger record: what a finished run measured, the recipe that made it, and where and when it ran.

A record is built from the run folder alone: ``config.yaml`` (the resolved config: its SHA-256 and the seed),
``test_metrics.json`` (the metrics) and, for a run the suite made, ``suite.json`` (the experiment, the command's
config files and overrides, the seconds, threads, jobs, the suite's id and the times). Records are only ever
appended, one line each, under a lock: a second run of the same config and seed is a second record, and a
table uses the newest (:func:`newest`).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import platform
import shlex
import subprocess
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import yaml

from dlmnist import runs
from dlmnist.argv import config_files

LEDGER = Path("results") / "ledger.jsonl"
VOLATILE = ("name", "runs_dir", "ckpt_path")  # where a run went, not what it is: left out of config_sha256


class LedgerError(ValueError):
    pass


def default_path(runs_dir: Path) -> Path:
    """The ledger of a runs folder: ``results/ledger.jsonl`` beside it (``runs`` -> ``results/ledger.jsonl``)."""
    return Path(runs_dir).resolve().parent / LEDGER


def utc(seconds: Optional[float] = None) -> str:
    when = datetime.now(timezone.utc) if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)
    return when.isoformat(timespec="seconds")


def config_sha256(config: dict, run: Path) -> str:
    """SHA-256 of the resolved config without what only says where the run went (its name, its runs folder, and
    its own folder wherever a value names it, e.g. the loggers' save_dir)."""
    kept = {k: v for k, v in config.items() if k not in VOLATILE}
    text = yaml.safe_dump(kept, sort_keys=True).replace(str(Path(run).resolve()), "<run>").replace(str(run), "<run>")
    return hashlib.sha256(text.encode()).hexdigest()


def split_command(command: str) -> tuple[list[str], list[str]]:
    """``dlmnist fit -c A -c B --x=1 --name=n --runs_dir=r`` -> (["A", "B"], ["--x=1"])."""
    argv = shlex.split(command)[2:]
    files = config_files(argv)
    overrides, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "--config"):
            skip = True
        elif not arg.startswith(("--config=", "--name=", "--runs_dir=")):
            overrides.append(arg)
    return files, overrides


@functools.cache
def versions() -> dict[str, str]:
    """dlmnist (with the git commit of its checkout, ``+dirty`` when it has changes), torch, Lightning."""
    from importlib.metadata import version

    import lightning
    import torch

    import dlmnist

    own = version("dlmnist") + checkout(Path(dlmnist.__file__).resolve().parents[1])
    return {"dlmnist": own, "torch": torch.__version__, "lightning": lightning.__version__}


def checkout(where: Path) -> str:
    """``+g<commit>`` of the git checkout ``where`` (``.dirty`` added when a tracked file other than the ledger
    differs from the commit: a suite run in the checkout appends to ``results/ledger.jsonl`` as it goes), or ""."""
    if not (where / ".git").exists():
        return ""
    git = ["git", "-C", str(where)]
    commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = [*git, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results/ledger.jsonl"]
    dirty = subprocess.run(changed, capture_output=True, text=True).stdout.strip()
    return f"+g{commit}" + (".dirty" if dirty else "") if commit else ""


@functools.cache
def machine() -> dict[str, Any]:
    """CPU model, cores, native bf16 or not, the GPU (None without one)."""
    import torch

    from dlmnist.compat import cpu_native_bf16

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "native_bf16": cpu_native_bf16(), "gpu": gpu}


def describe(m: dict[str, Any]) -> str:
    """``AMD EPYC 7B13, 2 cores, native bf16, no GPU``."""
    bf16 = "native bf16" if m.get("native_bf16") else "no native bf16"
    return f"{m.get('cpu')}, {m.get('cores')} cores, {bf16}, {m.get('gpu') or 'no GPU'}"


def cpu_kind(record: dict[str, Any]) -> str:
    """``AMD EPYC, no native bf16``: one CPU model name can stand for two kinds whose times and last digits differ."""
    m = record.get("machine") or {}
    return f"{m.get('cpu')}, {'native bf16' if m.get('native_bf16') else 'no native bf16'}"


def cpu_kinds(records: list[dict[str, Any]]) -> str:
    """``AMD EPYC, native bf16: 140 runs; AMD EPYC, no native bf16: 87 runs`` (most runs first; "" for none)."""
    kinds = Counter(cpu_kind(r) for r in records)
    return "; ".join(f"{k}: {n} run{'s' * (n != 1)}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


def machine_kind(record: dict[str, Any]) -> tuple:
    """What sets a run's last digits besides config and seed: CPU model, native bf16 or not, GPU (:func:`cpu_kind`)."""
    m = record.get("machine") or {}
    return m.get("cpu"), bool(m.get("native_bf16")), m.get("gpu")


def references(records: list[dict[str, Any]], now: dict[str, Any]) -> list[dict[str, Any]]:
    """What a rerun compares with: the newest record of ``now``'s experiment and seed per kind of machine (and thread
    count, where both are known); ``now``'s kind and threads first, then its kind, then the other kinds."""
    def key(r: dict[str, Any]) -> tuple:
        threads = r.get("threads") if now.get("threads") is not None else None
        return *machine_kind(r), threads

    best: dict[tuple, dict[str, Any]] = {}
    for r in records:
        if r.get("experiment") == now["experiment"] and r.get("seed") == now["seed"]:
            k = key(r)
            if k not in best or str(r.get("ended")) >= str(best[k].get("ended")):
                best[k] = r
    newest_first = sorted(best.values(), key=lambda r: str(r.get("ended")), reverse=True)
    return sorted(newest_first, key=lambda r: (key(r) != key(now), machine_kind(r) != machine_kind(now)))


def build(run: Path, experiment: Optional[str] = None) -> dict[str, Any]:
    """The record of a tested run folder (LedgerError when it has no config.yaml or no test metrics)."""
    run = Path(run)
    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise LedgerError(f"{run}: no config.yaml, not a run folder")
    metrics = runs.read_test(run)
    if not metrics:
        raise LedgerError(f"{run}: no test metrics (test_metrics.json): run `dlmnist test --ckpt_path` on it first")
    test_info = runs.read_json(run / "test_metrics.json")
    if test_info.get("partial"):
        seen, total = test_info.get("test_images"), test_info.get("test_images_total")
        raise LedgerError(f"{run}: tested on {seen} of {total} test images: test it on the whole test set first")
    config = yaml.safe_load(config_path.read_text()) or {}
    suite = runs.suite_record(run)
    if suite.get("fit_command"):
        files, overrides = split_command(suite["fit_command"])
    else:  # a run made by hand: its resolved config is its recipe
        files, overrides = [str(config_path)], []
    tested = run / "test_metrics.json"
    return {
        "experiment": experiment or suite.get("experiment") or suite.get("name") or run.parent.name,
        "configs": files,
        "overrides": overrides,
        "config_sha256": config_sha256(config, run),
        "seed": config.get("seed_everything"),
        "metrics": metrics,
        "fit_seconds": suite.get("fit_seconds"),
        "test_seconds": suite.get("test_seconds"),
        "threads": suite.get("threads"),
        "jobs": suite.get("jobs"),
        "versions": versions(),
        "machine": machine(),
        "started": suite.get("started") or utc(config_path.stat().st_mtime),
        "ended": suite.get("finished") or utc(tested.stat().st_mtime),
        "suite": suite.get("suite"),
        "run": str(run),
    }


def append(record: dict[str, Any], path: Path = LEDGER) -> None:
    """Add one line to the ledger, under an exclusive lock (jobs of one suite finish at the same time)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read(path: Path = LEDGER) -> list[dict[str, Any]]:
    """Every record, in the order they were added ([] when there is no ledger)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise LedgerError(f"{path}:{n}: not a JSON record ({e.msg})") from None
    return out


def newest(records: list[dict[str, Any]], experiment: str) -> dict[int, dict[str, Any]]:
    """``{seed: record}``: the newest record of each seed of ``experiment`` (by ``ended``, then ledger order)."""
    out: dict[int, dict[str, Any]] = {}
    for r in records:
        if r.get("experiment") == experiment:
            seed = r.get("seed")
            if seed not in out or str(r.get("ended")) >= str(out[seed].get("ended")):
                out[seed] = r
    return dict(sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))


def by_suite(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The records of each ``dlmnist suite`` invocation, by its id, in ledger order (hand-added records: none)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("suite"):
            out.setdefault(r["suite"], []).append(r)
    return out


def wall_seconds(records: list[dict[str, Any]]) -> float:
    """From the first record's ``started`` to the last one's ``ended``."""
    first, last = min(r["started"] for r in records), max(r["ended"] for r in records)
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()

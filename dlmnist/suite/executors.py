"""The settings of ``dlmnist suite --launcher local|slurm`` and the submitit executors they make.

The settings come from ``configs/launcher/<launcher>.yaml`` (``--launcher_config``), each
``--launcher_opt KEY=VALUE`` overriding one key. Keys of our own: ``jobs`` (jobs submitted and not yet
finished at a time; ``--jobs``), ``threads_per_job`` (torch threads in each job; local default: the cores
shared out between the jobs), ``poll_s``. Every other key is a parameter of submitit's executor
(``SlurmExecutor``: sbatch options such as ``partition``, ``account``, ``time``, ``gpus_per_node``,
``cpus_per_task``, ``setup``, ``additional_parameters``; ``LocalExecutor``: ``timeout_min``,
``gpus_per_node``, ``visible_gpus``, ...); a key the executor does not know is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlmnist import recipes
from dlmnist.compat import slurm_parameters

OWN_KEYS = {"jobs", "threads_per_job", "poll_s"}
# what submitit's LocalExecutor reads (it accepts any key silently, so unknown ones are refused here); not its
# tasks_per_node: several local tasks would each run the whole fit (DDP in a local job is Lightning's to start)
LOCAL_KEYS = {"timeout_min", "gpus_per_node", "visible_gpus", "signal_delay_s", "stderr_to_stdout", "setup"}


class LauncherError(ValueError):
    pass


@dataclass
class Launcher:
    kind: str  # local | slurm
    jobs: int | None = None  # at most this many jobs submitted and unfinished (None: no limit)
    threads_per_job: int | None = None
    poll_s: float = 1.0
    executor: dict[str, Any] = field(default_factory=dict)  # submitit executor parameters

    def gpu_pool(self) -> list[int]:
        """Local jobs with ``gpus_per_node`` > 0: the GPUs they share out (``visible_gpus``, default: all)."""
        if self.kind != "local" or not self.executor.get("gpus_per_node"):
            return []
        if self.executor.get("visible_gpus") is not None:
            return list(self.executor["visible_gpus"])
        import torch

        return list(range(torch.cuda.device_count()))

    def make_executor(self, folder: Path, name: str, after: list[str], gpus: tuple[int, ...] = ()):
        import submitit

        if self.kind == "local":
            ex = submitit.LocalExecutor(folder=folder)
            ex.update_parameters(**{**self.executor, **({"visible_gpus": gpus} if gpus else {})})
        else:
            ex = submitit.SlurmExecutor(folder=folder)
            params = {"job_name": f"dlmnist-{name}", **self.executor}
            if after:
                params["dependency"] = "afterok:" + ":".join(after)
            ex.update_parameters(**params)
        return ex


def parse_value(text: str) -> Any:
    return yaml.safe_load(text) if text.strip() else None


def load_launcher(kind: str, config: str | None, overrides: list[str], jobs: int | None) -> Launcher:
    """The settings of ``configs/launcher/<kind>.yaml`` (or ``config``) with ``KEY=VALUE`` overrides."""
    path = Path(recipes.path(config or f"configs/launcher/{kind}.yaml"))
    if not path.is_file():
        raise LauncherError(f"launcher settings {path} do not exist (--launcher_config)")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise LauncherError(f"{path}: expected a mapping of settings")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise LauncherError(f"--launcher_opt {item!r}: expected KEY=VALUE")
        values[key.strip()] = parse_value(text)
    if jobs is not None:
        values["jobs"] = jobs
    own = {k: values.pop(k) for k in OWN_KEYS & set(values)}
    for key in ("jobs", "threads_per_job"):
        if own.get(key) is not None and (not isinstance(own[key], int) or own[key] < 1):
            raise LauncherError(f"{key} must be a positive integer, got {own[key]!r}")
    if "poll_s" in own and (not isinstance(own["poll_s"], (int, float)) or own["poll_s"] <= 0):
        raise LauncherError(f"poll_s must be a positive number of seconds, got {own['poll_s']!r}")
    if kind == "local":
        known = LOCAL_KEYS
    else:
        known = slurm_parameters()
    unknown = sorted(set(values) - known)
    if unknown:
        raise LauncherError(f"{path}: unknown {kind} launcher setting(s) {unknown}; known: {sorted(known | OWN_KEYS)}")
    launcher = Launcher(kind, executor={k: v for k, v in values.items() if v is not None}, **own)
    if kind == "local":
        launcher.jobs = launcher.jobs or 1
        launcher.threads_per_job = launcher.threads_per_job or max(1, (os.cpu_count() or 1) // launcher.jobs)
    return launcher

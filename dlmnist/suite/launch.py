"""``dlmnist suite --launcher local|slurm``: every run of the graph as one submitit job (fit, then test).

The launcher settings come from ``configs/launcher/<launcher>.yaml`` (``--launcher_config``), each
``--launcher_opt KEY=VALUE`` overriding one key. Keys of our own: ``jobs`` (jobs submitted and not yet
finished at a time; ``--jobs``), ``threads_per_job`` (torch threads in each job; local default: the cores
shared out between the jobs), ``poll_s``. Every other key is a parameter of submitit's executor
(``SlurmExecutor``: sbatch options such as ``partition``, ``account``, ``time``, ``gpus_per_node``,
``cpus_per_task``, ``setup``, ``additional_parameters``; ``LocalExecutor``: ``timeout_min``, ...).

A run that needs another's run folder is submitted once that run has finished (local), or at once with
``--dependency=afterok:<job id>`` (SLURM); its arguments name the folder the needed run's fit will make,
the next ``version_<n>`` (the job checks that it got it). Reuse is the sequential suite's: a run whose
key matches a finished run is not submitted again. A failed job is reported with the last lines of its
log, what needs it is skipped, the other runs go on. Stopping the suite (Ctrl+C, SIGTERM, SIGHUP)
cancels the jobs it submitted and waits for their processes to end.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlmnist.suite.graph import Graph, Node
from dlmnist.suite.jobs import JOBS_DIR, RunJob
from dlmnist.suite.runner import node_key
from dlmnist.suite.runs import find_suite_run, suite_record, versions

OWN_KEYS = {"jobs", "threads_per_job", "poll_s"}
# what submitit's LocalExecutor reads (it accepts any key silently, so unknown ones are refused here)
LOCAL_KEYS = {"timeout_min", "gpus_per_node", "visible_gpus", "tasks_per_node", "nodes", "signal_delay_s"}
LOCAL_KEYS |= {"stderr_to_stdout", "setup"}
LOG_TAIL = 20  # lines of a failed job's log shown by the suite


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
    path = Path(config or f"configs/launcher/{kind}.yaml")
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
    if kind == "local":
        known = LOCAL_KEYS
    else:
        import submitit

        known = submitit.SlurmExecutor._valid_parameters()  # the sbatch parameters submitit knows
    unknown = sorted(set(values) - known)
    if unknown:
        raise LauncherError(f"{path}: unknown {kind} launcher setting(s) {unknown}; known: {sorted(known | OWN_KEYS)}")
    launcher = Launcher(kind, executor={k: v for k, v in values.items() if v is not None}, **own)
    if kind == "local":
        launcher.jobs = launcher.jobs or 1
        launcher.threads_per_job = launcher.threads_per_job or max(1, (os.cpu_count() or 1) // launcher.jobs)
    return launcher


def next_version(base: Path) -> Path:
    """The run folder the next ``dlmnist fit`` of experiment ``base`` makes (what the CLI picks)."""
    found = versions(base)
    return base / f"version_{int(found[-1].name.split('_')[1]) + 1 if found else 0}"


def log_tail(job, lines: int = LOG_TAIL) -> str:
    """The last lines of a job's stderr (else stdout), or where its log was expected."""
    paths = job.task(0).paths  # a multi-task (DDP) job: the log of its first task
    for path in (Path(paths.stderr), Path(paths.stdout)):
        if path.is_file() and path.stat().st_size:
            text = path.read_text(errors="replace").rstrip().splitlines()[-lines:]
            return f"last {len(text)} lines of {path}:\n" + "\n".join("    " + line for line in text)
    return f"no log at {paths.stderr}"


def _cancel(job) -> None:
    try:
        job.cancel(check=False)
    except Exception as e:  # noqa: BLE001 (report and go on cancelling the others)
        print(f"[suite] could not cancel job {job.job_id}: {e}", flush=True)


def _wait_gone(jobs: list, kind: str, within_s: float = 60.0) -> None:
    """Local jobs: wait until their processes ended (submitit's controller interrupts, then kills its task)."""
    if kind != "local":
        return
    deadline = time.monotonic() + within_s
    while any(not j.done() for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.2)
    for j in jobs:
        if not j.done():
            os.kill(int(j.job_id), signal.SIGKILL)  # a local job's id is its controller's pid


class _Stop(BaseException):
    pass


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def _cancel_dependents(graph: Graph, inflight: dict[str, Any], failed: list[str]) -> None:
    """SLURM: cancel the queued jobs that need a failed run, directly or through another such job."""
    while True:
        doomed = [n for n in inflight if any(d in failed for d in graph.nodes[n].deps)]
        if not doomed:
            return
        for other in doomed:
            job = inflight.pop(other)
            _cancel(job)
            needs = ", ".join(d for d in graph.nodes[other].deps if d in failed)
            print(f"[suite] {other}: cancelled job {job.job_id}, it needs {needs}", flush=True)
            failed.append(other)


def run_graph_jobs(
    graph: Graph, runs_dir: Path, quick: bool, launcher: Launcher, only=None, force=(), extra=()
) -> tuple[int, bool]:
    """Run (or reuse) every node as a job. Returns (the number of failed or skipped nodes, interrupted)."""
    pending: list[Node] = list(graph.order(only))
    run_dirs: dict[str, Path] = {}
    keys: dict[str, str] = {}
    done: set[str] = set()
    failed: list[str] = []
    inflight: dict[str, Any] = {}  # name -> submitit job
    gpus_of: dict[str, tuple[int, ...]] = {}  # local jobs: the GPUs each one was given (CUDA_VISIBLE_DEVICES)
    pool = launcher.gpu_pool()
    per_job = int(launcher.executor.get("gpus_per_node") or 0) if launcher.kind == "local" else 0
    if per_job > len(pool):
        raise LauncherError(f"gpus_per_node={per_job} but {len(pool)} GPU(s) to share out (visible_gpus)")
    handlers = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    interrupted = False
    try:
        while pending or inflight:
            for node in list(pending):
                if any(dep in failed for dep in node.deps):
                    print(f"[suite] {node.name}: skipped, it needs a failed experiment", flush=True)
                    pending.remove(node)
                    failed.append(node.name)
                    continue
                running = [d for d in node.deps if d in inflight]
                if any(d not in done and d not in inflight for d in node.deps):
                    continue  # a dependency not submitted yet
                if running and launcher.kind == "local":
                    continue  # local jobs have no dependencies: wait for the run it needs
                if launcher.jobs is not None and len(inflight) >= launcher.jobs:
                    break
                in_use = {g for gs in gpus_of.values() for g in gs}
                gpus = tuple([g for g in pool if g not in in_use][:per_job])
                if len(gpus) < per_job:
                    break  # every GPU is taken: wait for a job to finish
                pending.remove(node)
                try:
                    job = _submit(node, graph, runs_dir, quick, launcher, extra, force, run_dirs, keys, inflight, gpus)
                except Exception as e:  # noqa: BLE001 (a node whose config does not resolve: report, go on)
                    print(f"[suite] {node.name}: FAILED before submission: {e}", flush=True)
                    failed.append(node.name)
                    continue
                if job is None:
                    done.add(node.name)
                else:
                    inflight[node.name] = job
                    gpus_of[node.name] = gpus
            finished = [name for name, job in inflight.items() if job.done()]
            if not finished:
                time.sleep(launcher.poll_s)
                continue
            for name in finished:
                if name not in inflight:  # cancelled meanwhile: it needed a run that failed
                    continue
                job = inflight.pop(name)
                gpus_of.pop(name, None)
                error = job.exception()
                if error is None:
                    run_dirs[name] = Path(job.results()[0])  # every task (DDP process) returns the run folder
                    done.add(name)
                    print(f"[suite] {name}: done (job {job.job_id}), {run_dirs[name]}", flush=True)
                else:
                    failed.append(name)
                    print(f"[suite] {name}: FAILED (job {job.job_id}); {log_tail(job)}", flush=True)
                    _cancel_dependents(graph, inflight, failed)
    except (KeyboardInterrupt, _Stop) as e:
        interrupted = True
        what = "Ctrl+C" if isinstance(e, KeyboardInterrupt) else str(e)
        print(f"[suite] {what}: cancelling {len(inflight)} job(s) {sorted(inflight)}", flush=True)
        for job in inflight.values():
            _cancel(job)
        _wait_gone(list(inflight.values()), launcher.kind)
        failed += [*inflight, *(n.name for n in pending)]
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    if failed:
        print(f"[suite] failed, skipped or not run: {', '.join(failed)}", flush=True)
    return len(failed), interrupted


def _submit(node, graph, runs_dir, quick, launcher, extra, force, run_dirs, keys, inflight, gpus=()):
    """Reuse the node's finished run (returns None), or submit its job (returns it)."""
    args = [*node.fit_args(run_dirs, graph.quick if quick else None), *extra, f"--runs_dir={runs_dir}"]
    keys[node.name] = key = node_key(args, [keys[d] for d in node.deps], node.test)
    forced = any(fnmatch.fnmatch(node.name, pattern) for pattern in force)
    run = None if forced else find_suite_run(runs_dir / node.name, key)
    if run is not None and suite_record(run).get("status") == "done":
        print(f"[suite] {node.name}: up to date, {run}", flush=True)
        run_dirs[node.name] = run
        return None
    base = runs_dir / node.name
    target = run if run is not None else next_version(base)
    after = [inflight[d].job_id for d in node.deps if d in inflight]
    job_spec = RunJob(
        node,
        args,
        key,
        quick,
        str(runs_dir),
        str(target),
        fit=run is None,
        threads=launcher.threads_per_job,
        suite_pid=os.getpid() if launcher.kind == "local" else None,
        info={"launcher": launcher.kind},
    )
    executor = launcher.make_executor(base / JOBS_DIR, node.name, after, gpus)
    job = executor.submit(job_spec)
    run_dirs[node.name] = target
    what = f"dlmnist fit {shlex.join(args)}" if run is None else f"dlmnist test on {run}"
    wait = f", after job(s) {', '.join(after)}" if after else ""
    wait += f", GPU {','.join(map(str, gpus))}" if gpus else ""
    print(f"[suite] {node.name}: job {job.job_id}{wait}: {what}; log {job.task(0).paths.stdout}", flush=True)
    return job

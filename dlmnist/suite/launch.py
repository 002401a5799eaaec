"""``dlmnist suite --launcher local|slurm``: every run of the graph as one submitit job (fit, then test).

A run that needs another's run folder is submitted once that run has finished (local), or at once with
``--dependency=afterok:<job id>`` (SLURM); its arguments name the folder the needed run's fit writes into:
the suite claims each job's run folder (:mod:`dlmnist.runs`) before it submits the job, and the job's fit
writes there; a job that ends without writing anything leaves no folder. Reuse is the sequential suite's: a run whose
key matches a finished run is not submitted again. A failed job is reported with the last lines of its
log, what needs it is skipped, the other runs go on. Stopping the suite (Ctrl+C, SIGTERM, SIGHUP)
cancels the jobs it submitted and waits for their processes to end. The settings: ``executors.py``.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import signal
import time
from pathlib import Path
from typing import Any

from dlmnist import runs
from dlmnist.ledger.record import default_path, read
from dlmnist.suite.cell import node_key
from dlmnist.suite.executors import Launcher, LauncherError
from dlmnist.suite.graph import Graph, Node
from dlmnist.suite.jobs import JOBS_DIR, RunJob
from dlmnist.suite.plan import Progress, expected, this_kind

LOG_TAIL = 20  # lines of a failed job's log shown by the suite


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
            print(f"[suite] job {j.job_id} did not stop within {within_s:.0f} s: killed", flush=True)
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
    graph: Graph, runs_dir: Path, quick: bool, launcher: Launcher, only=None, force=(), extra=(), info=None
) -> tuple[int, bool]:
    """Run (or reuse) every node as a job. Returns (the number of failed or skipped nodes, interrupted)."""
    pending: list[Node] = list(graph.order(only))
    progress = Progress(expected(pending, read(default_path(runs_dir)), this_kind()), launcher.jobs or 1)
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
                    job = _submit(
                        node, graph, runs_dir, quick, launcher, extra, force, run_dirs, keys, inflight, gpus, info
                    )
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
                print(progress.finished(name, running=len(inflight)), flush=True)
    except (KeyboardInterrupt, _Stop) as e:
        interrupted = True
        what = "Ctrl+C" if isinstance(e, KeyboardInterrupt) else str(e)
        print(f"[suite] {what}: cancelling {len(inflight)} job(s) {sorted(inflight)}", flush=True)
        for job in inflight.values():
            _cancel(job)
        _wait_gone(list(inflight.values()), launcher.kind)
        failed += [*inflight, *(n.name for n in pending)]
    finally:
        for folder in run_dirs.values():  # a claimed folder whose job never wrote into it (cancelled, failed)
            runs.release([folder])
        for s, h in handlers.items():
            signal.signal(s, h)
    if failed:
        print(f"[suite] failed, skipped or not run: {', '.join(failed)}", flush=True)
    return len(failed), interrupted


def _submit(node, graph, runs_dir, quick, launcher, extra, force, run_dirs, keys, inflight, gpus=(), info=None):
    """Reuse the node's finished run (returns None), or submit its job (returns it)."""
    args = [*node.fit_args(run_dirs, graph.quick if quick else None), *extra, f"--runs_dir={runs_dir}"]
    keys[node.name] = key = node_key(args, [keys[d] for d in node.deps], node.test)
    forced = any(fnmatch.fnmatch(node.name, pattern) for pattern in force)
    run = None if forced else runs.find_suite_run(runs_dir / node.name, key)
    if run is not None and runs.suite_record(run).get("status") == "done":
        print(f"[suite] {node.name}: up to date, {run}", flush=True)
        run_dirs[node.name] = run
        return None
    base = runs_dir / node.name
    target, made = (run, []) if run is not None else runs.new_version(base)
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
        info={**(info or {}), "launcher": launcher.kind, "jobs": launcher.jobs, "experiment": node.experiment},
    )
    executor = launcher.make_executor(base / JOBS_DIR, node.name, after, gpus)
    try:
        job = executor.submit(job_spec)
    except BaseException:
        runs.release(made)
        raise
    run_dirs[node.name] = target
    what = f"dlmnist fit {shlex.join(args)}" if run is None else f"dlmnist test on {run}"
    wait = f", after job(s) {', '.join(after)}" if after else ""
    wait += f", GPU {','.join(map(str, gpus))}" if gpus else ""
    print(f"[suite] {node.name}: job {job.job_id}{wait}: {what}; log {job.task(0).paths.stdout}", flush=True)
    return job

"""What one job of ``dlmnist suite --launcher local|slurm`` runs: ``dlmnist fit`` then ``dlmnist test`` of one run.

A :class:`RunJob` is pickled by submitit and called in the job's process (a local process or a SLURM
task), where it does what the sequential suite does for one experiment: the same in-process CLI calls,
the same ``suite.json``, which says ``done`` only once the test has finished. The job's own log files
(submitit's, under ``runs/<name>/jobs/``) are linked into the run folder as ``job.out`` and ``job.err``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlmnist.runs import suite_record, use_folder, write_record
from dlmnist.suite.cell import call_cli, finish, fit, test
from dlmnist.suite.graph import Node

JOBS_DIR = "jobs"  # submitit's folder of an experiment: runs/<name>/jobs/<job id>_0_log.{out,err}, pickles


@dataclass
class RunJob:
    node: Node
    args: list[str]  # dlmnist fit arguments, the run folders of the dependencies filled in
    key: str
    quick: bool
    runs_dir: str
    run: str  # the run folder: claimed by the suite for `fit` to write into, or a fitted run to test
    fit: bool = True
    threads: int | None = None  # torch.set_num_threads in the job (None: torch's default)
    suite_pid: int | None = None  # local launcher: stop when the suite process that started this job is gone
    info: dict = field(default_factory=dict)  # launcher and job id, added to suite.json

    def __call__(self) -> str:
        import submitit
        import torch

        env = submitit.JobEnvironment()
        interruptible()
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.suite_pid:
            _stop_when_gone(self.suite_pid)
        run = Path(self.run)
        test_args = [*self.args, f"--ckpt_path={run / 'checkpoints' / f'{self.node.test}.ckpt'}"]
        if _rank(env) != 0:  # another DDP process of this job: the same calls, no records, no links
            if self.fit:
                call_cli(["fit", *self.args])
            if self.node.test:
                call_cli(["test", *test_args])
            return str(run)
        info = {**self.info, "job_id": env.job_id, "job_started": time.time()}
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
            info["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
        try:
            if self.fit:
                with use_folder(run):  # the folder the suite claimed for this job
                    fit(self.node, self.args, self.key, self.quick, info)
            else:  # a fitted run, tested by this job
                write_record(run, {**suite_record(run), **info})
            _link_logs(run, env)
            if self.node.test:
                test(self.node, run, self.args)
            write_record(run, {**suite_record(run), "job_finished": time.time()})
            finish(run)
        finally:
            _link_logs(run, env)
        return str(run)


def _rank(env) -> int:
    """This process's rank in its job: SLURM's task (srun starts one per GPU), or, in a process Lightning's
    DDP launcher started (it runs this job's command again, with LOCAL_RANK/NODE_RANK set), Lightning's."""
    lightning = int(os.environ.get("LOCAL_RANK", 0)) + int(os.environ.get("NODE_RANK", 0))
    return env.global_rank or lightning


def _link_logs(run: Path, env) -> None:
    """``run/job.out`` and ``run/job.err``: relative links to this job's submitit log files."""
    if not run.is_dir():
        return
    for name, target in (("job.out", env.paths.stdout), ("job.err", env.paths.stderr)):
        link = run / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(Path(target).resolve(), run.resolve()))


def interruptible() -> None:
    """Let SIGINT stop this process even when it came in ignored: a suite started with ``nohup`` or as a
    background job of a script has SIGINT ignored, and an ignored signal stays ignored in every process below
    it. submitit cancels a local job with SIGINT, and :func:`_stop_when_gone` stops an orphaned one with it:
    ignored, the job trained on until the suite killed its controller, then ran on as an orphan."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_when_gone(pid: int, every_s: float = 1.0) -> None:
    """Interrupt this process (as Ctrl+C would) once process ``pid`` has ended: a killed suite leaves no job
    behind. The interrupted run is not marked finished; still alive 30 s later, the process exits."""

    def watch() -> None:
        while _alive(pid):
            time.sleep(every_s)
        print(f"[suite job] the suite (pid {pid}) is gone: stopping this job", flush=True)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
        os._exit(1)

    threading.Thread(target=watch, name="suite-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and, where /proc tells, is no zombie (killed, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

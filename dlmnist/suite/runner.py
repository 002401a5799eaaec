"""``dlmnist suite``: run every experiment of ``configs/suite.yaml`` in dependency order, fit then test.

A run is reused when the suite already finished one with the same key: the SHA-256 of the resolved
config (``dlmnist fit ... --print_config``, so a changed default or override counts) and of the keys
of the runs it depends on (so a rerun upstream reruns everything downstream). Each run the suite
makes gets ``suite.json`` in its folder: the key, the exact commands and their wall times. Runs go
through the real CLI in this process (no start-up cost per run); ``--quick`` adds the graph's tiny
budgets and writes into ``runs-quick/``. ``--launcher local|slurm`` makes each run a submitit job
instead, several at a time (``dlmnist.suite.launch``, docs/cluster.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from dlmnist import recipes
from dlmnist.ledger.record import default_path, read, utc
from dlmnist.runs import find_suite_run, suite_record
from dlmnist.suite.cell import finish, fit, node_key, test
from dlmnist.suite.graph import Graph, load_graph
from dlmnist.suite.plan import Progress, expected, this_kind


def run_graph(graph: Graph, runs_dir: Path, quick: bool, only=None, force=(), extra=(), dry_run=False, info=None):
    """Run (or reuse) every node; a failed node skips what depends on it. Returns the number of failures."""
    run_dirs: dict[str, Path] = {}
    keys: dict[str, str] = {}
    failed: list[str] = []
    order = graph.order(only)
    progress = Progress(expected(order, read(default_path(runs_dir)), this_kind()))
    for node in order:
        if any(dep in failed for dep in node.deps):
            print(f"[suite] {node.name}: skipped, it needs a failed experiment", flush=True)
            failed.append(node.name)
            continue
        args = [*node.fit_args(run_dirs, graph.quick if quick else None), *extra, f"--runs_dir={runs_dir}"]
        try:
            keys[node.name] = key = node_key(args, [keys[d] for d in node.deps], node.test)
            forced = any(fnmatch.fnmatch(node.name, pattern) for pattern in force)
            run = None if forced else find_suite_run(runs_dir / node.name, key)
            if run is not None and suite_record(run).get("status") == "done":
                print(f"[suite] {node.name}: up to date, {run}", flush=True)
            elif dry_run:
                print(f"[suite] {node.name}: would run dlmnist fit {shlex.join(args)}", flush=True)
                run = runs_dir / node.name / "version_<new>"
            else:
                if run is None:
                    print(f"[suite] {node.name}: dlmnist fit {shlex.join(args)}", flush=True)
                    run = fit(node, args, key, quick, {**(info or {}), "jobs": 1})
                if node.test:
                    print(f"[suite] {node.name}: dlmnist test on {run}/checkpoints/{node.test}.ckpt", flush=True)
                    test(node, run, args)
                finish(run)
                print(f"[suite] {node.name}: done, {run}", flush=True)
            run_dirs[node.name] = run
        except Exception:  # noqa: BLE001 (report it, go on with what does not depend on it)
            traceback.print_exc()
            print(f"[suite] {node.name}: FAILED", flush=True)
            failed.append(node.name)
        if not dry_run:
            print(progress.finished(node.name), flush=True)
    if failed:
        print(f"[suite] failed or skipped: {', '.join(failed)}", flush=True)
    return len(failed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlmnist suite", description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", default="configs/suite.yaml", help="the experiment graph (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny budgets from the graph's `quick:` (CI)")
    p.add_argument("--runs_dir", default=None, help="default: runs, or runs-quick with --quick")
    p.add_argument("--only", nargs="+", default=None, help="these experiments (names or globs) and what they need")
    p.add_argument("--force", nargs="+", default=(), help="rerun these (names or globs) even if up to date")
    p.add_argument("--dry_run", action="store_true", help="say what would run, run nothing")
    p.add_argument("--plan", action="store_true", help="every run's expected seconds (ledger), the critical path, "
                   "the wall time at --jobs; run nothing")
    p.add_argument(
        "--launcher",
        choices=("sequential", "local", "slurm"),
        default="sequential",
        help="sequential: one run after another in this process (default); local: each run a job in its own "
        "process, --jobs at a time (submitit's LocalExecutor); slurm: each run a SLURM job (submitit), a run "
        "that needs another submitted with --dependency=afterok (docs/cluster.md)",
    )
    p.add_argument("--jobs", type=int, default=None, help="jobs at a time (default: the launcher config's `jobs`)")
    p.add_argument(
        "--launcher_config", default=None, help="launcher settings (default: configs/launcher/<launcher>.yaml)"
    )
    p.add_argument(
        "--launcher_opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one launcher setting, e.g. --launcher_opt partition=gpu --launcher_opt time=240",
    )
    p.epilog = "Arguments after -- go to every run: dlmnist ... -- -c configs/trainer/gpu.yaml --data.batch_size=512"
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    a, extra = p.parse_args(argv[:cut]), argv[cut + 1 :]
    if not recipes.exists(a.graph):
        p.error(recipes.unknown(a.graph))
    graph = load_graph(a.graph, quick=a.quick)
    only = None
    if a.only:
        only = [n for n in graph.nodes if any(fnmatch.fnmatch(n, pat) for pat in a.only)]
        if not only:
            p.error(f"--only {' '.join(a.only)} matches no experiment of {a.graph}")
    runs_dir = Path(a.runs_dir or ("runs-quick" if a.quick else "runs"))
    if a.plan:
        from dlmnist.suite.plan import print_plan

        print_plan(graph, only, default_path(runs_dir), a.jobs or 1)
        return 0
    if a.jobs is not None and a.jobs < 1:
        p.error(f"--jobs must be at least 1, got {a.jobs}")
    if a.launcher == "sequential" and (a.jobs is not None or a.launcher_opt or a.launcher_config):
        p.error("--jobs, --launcher_opt and --launcher_config need --launcher local or --launcher slurm")
    launcher = None
    if a.launcher != "sequential":
        from dlmnist.suite.executors import LauncherError, load_launcher
        from dlmnist.suite.launch import run_graph_jobs

        try:
            launcher = load_launcher(a.launcher, a.launcher_config, a.launcher_opt, a.jobs)
        except LauncherError as e:
            p.error(str(e))
    start = time.perf_counter()
    info = {"suite": f"suite-{utc().replace(':', '').replace('+0000', 'Z')}-{os.getpid()}"}  # this invocation
    if launcher is None or a.dry_run:
        failures = run_graph(graph, runs_dir, a.quick, only, a.force, extra, a.dry_run, info)
    else:
        try:
            failures, interrupted = run_graph_jobs(graph, runs_dir, a.quick, launcher, only, a.force, extra, info)
        except LauncherError as e:
            p.error(str(e))
        if interrupted:
            print("[suite] interrupted; run the same command again to finish what is missing", flush=True)
            return 130
    print(f"[suite] {len(graph.order(only))} experiments, {failures} failed, {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

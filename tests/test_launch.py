"""dlmnist suite --launcher local|slurm: real submitit jobs (local processes), the sequential suite's results,
dependencies, failures, interrupts; SLURM job scripts checked through submitit with a fake sbatch on PATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dlmnist.suite.runner import main as suite_main

from .conftest import CONFIGS, ROOT

QUICK = {
    "trainer.max_epochs": 1,
    "trainer.limit_train_batches": 2,
    "trainer.limit_val_batches": 1,
    "trainer.limit_test_batches": 1,
    "trainer.check_val_every_n_epoch": 1,
    "trainer.enable_progress_bar": False,
    "trainer.enable_model_summary": False,
    "trainer.log_every_n_steps": 1,
}
LOCAL = ["--launcher", "local", "--launcher_config", str(CONFIGS / "launcher" / "local.yaml")]
TRANSFER = {"model.encoder_checkpoint": "{ae}/checkpoints/best.ckpt"}


def graph_file(path: Path, experiments: dict) -> Path:
    for entry in experiments.values():
        configs = entry["config"] if isinstance(entry["config"], list) else [entry["config"]]
        entry["config"] = [str(CONFIGS / c) for c in configs]
    path.write_text(yaml.safe_dump({"experiments": experiments, "quick": QUICK}))
    return path


def data_args(fake_data: Path) -> list[str]:
    # val_subset: the fake set's 120 validation images cannot give the few-label configs 10 of each digit
    return ["--", f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist", "--data.batch_size=64",
            "--data.val_subset=null"]  # fmt: skip


def record(runs: Path, name: str, version: int = 0) -> dict:
    path = runs / name / f"version_{version}" / "suite.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def done_runs(runs: Path) -> dict[str, dict]:
    """{experiment: test metrics} of every run the suite marked done."""
    out = {}
    for path in sorted(runs.glob("*/version_*/suite.json")):
        if json.loads(path.read_text()).get("status") == "done":
            metrics = path.parent / "test_metrics.json"
            out[path.parent.parent.name] = json.loads(metrics.read_text()) if metrics.is_file() else None
    return out


@pytest.fixture
def one_thread():
    """The sequential suite on one torch thread, as each job of --launcher local with threads_per_job=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_local_jobs_give_the_sequential_runs_and_metrics_and_wait_for_dependencies(
    fake_data, tmp_path, one_thread, capsys
):
    graph = graph_file(
        tmp_path / "g.yaml",
        {
            "ae": {"config": "ae_conv.yaml"},
            "clf": {"config": "cnn.yaml"},
            "transfer": {"config": "fewshot_transfer.yaml", "args": dict(TRANSFER)},
        },
    )
    seq, par = tmp_path / "seq", tmp_path / "par"
    common = ["--graph", str(graph), "--quick"]
    assert suite_main([*common, "--runs_dir", str(seq), *data_args(fake_data)]) == 0
    local = [*LOCAL, "--jobs", "2", "--launcher_opt", "threads_per_job=1"]
    local += [x for o in ("poll_s=0.2", "gpus_per_node=1", "visible_gpus=[3,5]") for x in ("--launcher_opt", o)]
    assert suite_main([*common, "--runs_dir", str(par), *local, *data_args(fake_data)]) == 0

    expected, got = done_runs(seq), done_runs(par)
    assert sorted(got) == sorted(expected) == ["ae", "clf", "transfer"]
    for name, metrics in expected.items():
        assert metrics and got[name] == pytest.approx(metrics, rel=1e-5, abs=1e-6), name

    ae, transfer = record(par, "ae"), record(par, "transfer")
    assert ae["launcher"] == transfer["launcher"] == "local" and ae["job_id"] != transfer["job_id"]
    assert transfer["job_started"] >= ae["job_finished"]  # started after the run it needs had finished
    assert f"--model.encoder_checkpoint={par}/ae/version_0/checkpoints/best.ckpt" in transfer["fit_command"]
    clf = record(par, "clf")  # the GPUs are shared out: jobs running at the same time got different ones
    assert {r["cuda_visible_devices"] for r in (ae, clf, transfer)} <= {"3", "5"}
    if ae["job_started"] < clf["job_finished"] and clf["job_started"] < ae["job_finished"]:
        assert ae["cuda_visible_devices"] != clf["cuda_visible_devices"]
    for name in ("ae", "clf", "transfer"):  # the job's log in the run folder
        run = par / name / "version_0"
        assert (run / "job.err").resolve().parent == (par / name / "jobs").resolve()
        assert "Seed set to 42" in (run / "job.err").read_text() + (run / "job.out").read_text()

    # rerun: a run fitted but not tested gets a test job only, the finished ones nothing
    suite_json = par / "clf" / "version_0" / "suite.json"
    suite_json.write_text(json.dumps({**record(par, "clf"), "status": "fit"}))
    capsys.readouterr()
    assert suite_main([*common, "--runs_dir", str(par), *local, *data_args(fake_data)]) == 0
    out = capsys.readouterr().out
    assert out.count("up to date") == 2 and f"clf: job {record(par, 'clf')['job_id']}, GPU " in out
    assert f": dlmnist test on {par / 'clf' / 'version_0'};" in out and out.count("dlmnist fit") == 0
    assert not any(par.glob("*/version_1")) and done_runs(par) == got


@pytest.mark.slow
def test_a_failing_job_is_reported_and_its_independent_neighbours_go_on(fake_data, tmp_path, capsys):
    graph = graph_file(
        tmp_path / "g.yaml",
        {
            "bad": {"config": "fewshot_transfer.yaml", "args": {"model.encoder_checkpoint": "/nowhere/best.ckpt"}},
            "after_bad": {"config": "cnn.yaml", "needs": ["bad"]},
            "good": {"config": ["lenet5.yaml", "trainer/ddp_cpu.yaml"]},  # and DDP inside a job: Lightning's
        },
    )
    runs = tmp_path / "runs"
    argv = ["--graph", str(graph), "--quick", "--runs_dir", str(runs), *LOCAL, "--jobs", "2"]
    assert suite_main([*argv, "--launcher_opt", "poll_s=0.2", *data_args(fake_data)]) == 1
    out = capsys.readouterr().out
    assert "[suite] bad: FAILED (job " in out and "last " in out and "/nowhere/best.ckpt" in out  # the log's tail
    assert "after_bad: skipped" in out and not (runs / "after_bad").exists()
    assert list(done_runs(runs)) == ["good"]
    log = (runs / "good" / "version_0" / "job.err").read_text()  # two processes, the second started by Lightning
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    assert len(list((runs / "good").glob("version_*"))) == 1


def session_processes(sid: int) -> list[str]:
    """Command lines of the live processes in session ``sid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return found


def wait_for(condition, what: str, within_s: float = 120.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def with_tests_importable() -> dict[str, str]:
    """The environment plus the repository on PYTHONPATH: jobs load ``tests.fault_callbacks`` from any cwd."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def start_suite(argv: list[str]) -> subprocess.Popen:
    """``dlmnist suite ARGV`` as its own process, in its own session, with Ctrl+C not ignored: as a terminal would
    start it. (pytest started as a background job of a script, with nohup or by some CI runners has SIGINT ignored,
    and an ignored signal stays ignored in every process started below it: the suite would not see the test's
    Ctrl+C. A signal with a Python handler is reset to its default in a new program.)"""
    cmd = [sys.executable, "-m", "dlmnist", "suite", *argv]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            cmd,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=with_tests_importable(),
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def hold_at_first_batch(marker: Path) -> dict:
    """Graph ``args`` adding tests.fault_callbacks.HoldAtFirstBatch: the run writes ``marker`` when its first
    training batch starts and holds there until signalled (once: a rerun with the marker present goes through)."""
    callback = {"class_path": "tests.fault_callbacks.HoldAtFirstBatch", "init_args": {"marker": str(marker)}}
    return {"trainer.callbacks+": callback}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table from /proc")
@pytest.mark.parametrize("how", ["sigterm", "ctrl_c", "sigkill"])
def test_a_stopped_local_suite_leaves_no_process_and_no_false_finish_and_resumes(how, fake_data, tmp_path, monkeypatch):
    # the run to stop holds at its first training batch until signalled (HoldAtFirstBatch): the signal is sent
    # once its marker exists, so it always lands mid-training, however slow or loaded the machine
    held = "second" if how == "sigterm" else "first"  # sigterm: stop it while `second` runs, `first` finished
    marker = tmp_path / f"{held}.training"
    experiments = {"first": {"config": "cnn.yaml"}, "second": {"config": "lenet5.yaml", "needs": ["first"]}}
    experiments[held]["args"] = hold_at_first_batch(marker)
    graph = graph_file(tmp_path / "g.yaml", experiments)
    runs = tmp_path / "runs"
    argv = ["--graph", str(graph), "--quick", "--runs_dir", str(runs), *LOCAL, "--jobs", "1"]
    argv += ["--launcher_opt", "poll_s=0.2", *data_args(fake_data)]
    suite = start_suite(argv)
    wait_for(lambda: marker.is_file() or suite.poll() is not None, f"{held} training", within_s=300)
    assert suite.poll() is None, suite.communicate()[0]  # the suite ended before the run reached training
    if how == "sigterm":
        assert record(runs, "first").get("status") == "done"
        suite.send_signal(signal.SIGTERM)
    elif how == "ctrl_c":
        os.killpg(suite.pid, signal.SIGINT)  # what Ctrl+C in a terminal does: the whole process group
    else:
        suite.kill()  # SIGKILL: the jobs notice that the suite is gone and stop
    out, _ = suite.communicate(timeout=120)
    assert suite.returncode != 0, out
    wait_for(lambda: not session_processes(suite.pid), f"processes left: {session_processes(suite.pid)}")

    for name in ("first", "second"):  # only what really finished is marked done
        for path in (runs / name).glob("version_*/suite.json"):
            if json.loads(path.read_text()).get("status") == "done":
                assert (path.parent / "test_metrics.json").is_file(), path
    assert record(runs, "second").get("status") != "done"
    if how != "sigterm":  # the job stopped with the suite: it did not go on to finish `first` on its own
        assert record(runs, "first").get("status") != "done"
        return
    assert "cancelling 1 job(s) ['second']" in out and "run the same command again" in out
    first = record(runs, "first")
    monkeypatch.setenv("PYTHONPATH", with_tests_importable()["PYTHONPATH"])  # for the jobs this process starts
    assert suite_main(argv) == 0  # resumes: `first` is reused, the rest runs
    assert record(runs, "first") == first and not (runs / "first" / "version_1").exists()
    assert sorted(done_runs(runs)) == ["first", "second"]


@pytest.mark.slow
def test_a_job_stops_on_an_interrupt_even_when_started_with_interrupts_ignored():
    """A suite started with nohup (SIGINT ignored in every process below it): its jobs still stop on SIGINT,
    submitit's way of cancelling a local job."""
    job = "import os, signal, time; from dlmnist.suite.jobs import interruptible\n"
    job += "interruptible(); os.kill(os.getpid(), signal.SIGINT); time.sleep(120)"
    done = subprocess.run(
        [sys.executable, "-c", job],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr, done.stderr


FAKE_SBATCH = """#!/bin/bash
# a stand-in for SLURM's sbatch: records its arguments and the job script, answers as sbatch does, and
# fails the job at once: an error log line and submitit's result file saying "error", as a failed job leaves
d="$FAKE_SLURM_DIR"; n=$(( $(cat "$d/last_id" 2>/dev/null || echo 100) + 1 )); echo $n > "$d/last_id"
script="${@: -1}"; echo "$*" >> "$d/sbatch.calls"; cp "$script" "$d/job_$n.sh"
err=$(sed -n 's/^#SBATCH --error=//p' "$script"); err=${err//%j/$n}
echo "job $n: no cluster here" > "$err"
tasks=$(sed -n 's/^#SBATCH --ntasks-per-node=//p' "$script")
for t in $(seq 0 $(( ${tasks:-1} - 1 ))); do  # each task's result
    "$FAKE_PYTHON" -c 'import pickle, sys; pickle.dump(("error", "no cluster"), open(sys.argv[1], "wb"))' \\
        "${err%_0_log.err}_${t}_result.pkl"
done
echo "Submitted batch job $n"
"""
FAKE_SACCT = """#!/bin/bash
# every job asked about has failed (nothing runs here)
echo "JobID|State|NodeList"; while [ $# -gt 0 ]; do [ "$1" = -j ] && { echo "$2|FAILED|node1"; shift; }; shift; done
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """sbatch, sacct, scancel and srun stand-ins on PATH; submitit's own SlurmExecutor code drives them."""
    bin_dir, calls = tmp_path / "fake_slurm_bin", tmp_path / "fake_slurm"
    bin_dir.mkdir()
    calls.mkdir()
    scripts = {
        "sbatch": FAKE_SBATCH,
        "sacct": FAKE_SACCT,
        "scancel": '#!/bin/bash\necho "$*" >> "$FAKE_SLURM_DIR/scancel.calls"\n',
        "srun": "#!/bin/bash\nexit 1\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(calls))
    monkeypatch.setenv("FAKE_PYTHON", sys.executable)
    return calls


def test_slurm_job_scripts_carry_the_settings_the_command_and_the_dependencies(fake_slurm, tmp_path, capsys):
    from submitit.core.utils import DelayedSubmission

    graph = graph_file(
        tmp_path / "g.yaml",
        {
            "ae": {"config": "ae_conv.yaml"},
            "transfer": {"config": "fewshot_transfer.yaml", "args": dict(TRANSFER)},
            "clf": {"config": "cnn.yaml"},
            "after_transfer": {"config": "lenet5.yaml", "needs": ["transfer"]},
        },
    )
    runs = tmp_path / "runs"
    settings = tmp_path / "slurm.yaml"
    settings.write_text((CONFIGS / "launcher" / "slurm.yaml").read_text())
    opts = ["partition=gpu", "account=proj42", "time=30", "gpus_per_node=2", "ntasks_per_node=2", "poll_s=0.1"]
    opts += ["cpus_per_task=6"]
    opts += ["additional_parameters={kill-on-invalid-dep: 'yes', mail-type: END}", "setup=[module load cuda]"]
    argv = ["--graph", str(graph), "--quick", "--runs_dir", str(runs), "--launcher", "slurm"]
    argv += ["--launcher_config", str(settings), *(x for o in opts for x in ("--launcher_opt", o)), "--"]
    argv += ["--data.batch_size=64"]
    assert suite_main(argv) == 1  # every job failed at once (the fake sbatch's doing)
    out = capsys.readouterr().out

    names = ("ae", "transfer", "clf", "after_transfer")
    ids = {name: next((runs / name / "jobs").glob("*_submission.sh")).name.split("_")[0] for name in names}
    assert len(set(ids.values())) == 4  # all submitted at once, the dependents with afterok
    for name, job_id in ids.items():
        script = (fake_slurm / f"job_{job_id}.sh").read_text()
        for line in (
            "#SBATCH --partition=gpu",
            "#SBATCH --account=proj42",
            "#SBATCH --time=30",
            "#SBATCH --gpus-per-node=2",
            "#SBATCH --ntasks-per-node=2",  # one process per GPU, started by srun (DDP)
            "#SBATCH --cpus-per-task=6",
            "#SBATCH --kill-on-invalid-dep=yes",
            "#SBATCH --mail-type=END",
            f"#SBATCH --job-name=dlmnist-{name}",
            f"#SBATCH --output={runs}/{name}/jobs/%j_0_log.out",
            "module load cuda",
        ):
            assert line in script.splitlines(), (name, line, script)
        command = script.splitlines()[-1]
        assert command.startswith("srun ") and command.endswith(f"-u -m submitit.core._submit {runs}/{name}/jobs")
        assert ("--dependency=" in script) == (name in ("transfer", "after_transfer"))
        job = DelayedSubmission.load(runs / name / "jobs" / f"{job_id}_submitted.pkl").function  # what the job runs
        assert job.node.name == name and job.run == str(runs / name / "version_0") and job.fit
        assert "--data.batch_size=64" in job.args and "--trainer.limit_train_batches=2" in job.args
    transfer = (fake_slurm / f"job_{ids['transfer']}.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{ids['ae']}" in transfer.splitlines()
    after = (fake_slurm / f"job_{ids['after_transfer']}.sh").read_text()
    assert f"#SBATCH --dependency=afterok:{ids['transfer']}" in after.splitlines()
    job = DelayedSubmission.load(runs / "transfer" / "jobs" / f"{ids['transfer']}_submitted.pkl").function
    assert f"--model.encoder_checkpoint={runs}/ae/version_0/checkpoints/best.ckpt" in job.args

    log = f"{runs}/clf/jobs/{ids['clf']}_0_log.err"
    assert f"[suite] clf: FAILED (job {ids['clf']}); last 1 lines of {log}:\n    job {ids['clf']}: no cluster" in out
    assert f"transfer: cancelled job {ids['transfer']}, it needs ae" in out  # and what needs it, in turn
    assert f"after_transfer: cancelled job {ids['after_transfer']}, it needs transfer" in out
    assert (fake_slurm / "scancel.calls").read_text().split() == [ids["transfer"], ids["after_transfer"]]


def test_launcher_settings_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        suite_main([*LOCAL, "--launcher_opt", "jobs=0", "--dry_run"])
    assert "jobs must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        suite_main(["--jobs", "4", "--dry_run"])  # not silently one at a time
    assert "--jobs, --launcher_opt and --launcher_config need --launcher local" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        suite_main(["--launcher", "slurm", "--launcher_config", str(tmp_path / "nope.yaml")])
    assert "nope.yaml do not exist" in capsys.readouterr().err
    for launcher, typo in (("local", "timeout_mn=5"), ("slurm", "partion=gpu")):
        with pytest.raises(SystemExit):
            settings = str(CONFIGS / "launcher" / f"{launcher}.yaml")
            suite_main(["--launcher", launcher, "--launcher_config", settings, "--launcher_opt", typo, "--dry_run"])
        assert f"unknown {launcher} launcher setting(s) ['{typo.split('=')[0]}']" in capsys.readouterr().err

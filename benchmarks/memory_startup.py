"""`make bench`, parts ``rss`` and ``startup``: the peak memory of one `dlmnist fit` epoch and the wall time of the
command's quick answers (help, a missing config, a bad value, an unknown key)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.shared import CNN, DATA, DL, ROOT

# Runs `dlmnist fit` (the console script's entry point) and prints the process's own high-water mark at exit.
# Read from /proc/self/status (VmHWM) rather than taken from rusage: a child forked from this large benchmark
# process inherits the parent's RSS into its ru_maxrss before it execs, and RUSAGE_CHILDREN would also count
# the DataLoader workers forked by the data benchmark.
_RSS_PROBE = """
import atexit, sys
def report():
    hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\nVmHWM_KB {hwm}\\n")
atexit.register(report)
from dlmnist.entry import main
sys.argv[0] = "dlmnist"
main()
"""


def peak_rss_mb() -> dict:
    """Peak resident memory (VmHWM) of one `dlmnist fit -c configs/cnn.yaml` epoch, of that process alone."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [f"--data.data_dir={DATA}", f"--runs_dir={tmp}", "--trainer.max_epochs=1"]
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_PROBE, "fit", "-c", str(CNN), *args, "--trainer.enable_progress_bar=false"],
            capture_output=True,
            text=True,
        )
    found = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VmHWM_KB ")]
    if proc.returncode or not found:
        raise RuntimeError(f"dlmnist fit failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"peak_rss_mb": round(int(found[-1]) / 1024)}


def _median_wall_s(argv: list[str], repeats: int = 3, fails: bool = False) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        done = subprocess.run([*DL, *argv], capture_output=True)
        times.append(time.perf_counter() - t)
        if (done.returncode != 0) != fails:
            raise RuntimeError(f"dlmnist {' '.join(argv)} exited with {done.returncode}: {done.stderr[-500:]!r}")
    return round(statistics.median(times), 2)


def cli_startup() -> dict:
    """`dlmnist --help` (the target), and for the record the answers that import Lightning or not: `fit --help`,
    a missing config file (answered without Lightning), a bad value and an unknown key in a found config."""
    cnn = ["fit", "-c", str(ROOT / "configs" / "cnn.yaml")]
    return {
        "cli_startup_s": _median_wall_s(["--help"]),
        "cli_fit_help_s": _median_wall_s(["fit", "--help"]),
        "cli_missing_config_s": _median_wall_s(["fit", "-c", "configs/nope.yaml"], fails=True),
        "cli_bad_value_s": _median_wall_s([*cnn, "--model.lr=abc"], fails=True),
        "cli_unknown_key_s": _median_wall_s([*cnn, "--model.lrr=1"], fails=True),
    }

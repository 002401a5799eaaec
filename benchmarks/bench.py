"""`make bench`: dlmnist against the usual way, both sides in this one process on this machine.

Writes benchmarks/results.json with data_throughput_ratio, fit_overhead_ratio, time_to_99_s,
baseline_time_to_99_s, time_to_99_ratio, fast_time_to_99_s, fast_time_to_99_ratio, fast_seeds_reaching_99,
fast_compute_floor_s, bf16_step_ratio (and per model family), augment_epoch_ratio, peak_rss_mb, cli_startup_s,
the VAE's k = 5000 NLL per 10,000 images (vae_nll_*) and the suite's planned and measured wall time
(suite_planned_wall_s, suite_measured_wall_s), and prints a table.
`python -m benchmarks.bench --only data,overhead` runs a part; --seeds / --fast_seeds set the seeds of ours.
Each part lives in its own module: data_throughput.py, fit_overhead.py (overhead, augment), time_to_99.py,
bf16_step.py, memory_startup.py (rss, startup), vae_nll.py (nll), suite_time.py (suite); shared.py holds what
they share.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from benchmarks.bf16_step import bf16_step_ratio
from benchmarks.data_throughput import data_throughput
from benchmarks.fit_overhead import augment_cost, fit_overhead
from benchmarks.memory_startup import cli_startup, peak_rss_mb
from benchmarks.shared import ROOT, log
from benchmarks.suite_time import suite_time
from benchmarks.time_to_99 import time_to_99
from benchmarks.vae_nll import vae_nll

PARTS = {"data": data_throughput, "overhead": fit_overhead, "augment": augment_cost, "bf16": bf16_step_ratio,
         "t99": None, "rss": peak_rss_mb, "startup": cli_startup,
         "nll": vae_nll, "suite": suite_time}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {list(PARTS)}")
    p.add_argument("--seeds", default="1,2,3", help="seeds of our time-to-99 runs (configs/cnn.yaml)")
    p.add_argument("--fast_seeds", default="1,2,3,4,5", help="seeds of the fast recipe (configs/cnn_fast.yaml)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    args = p.parse_args(argv)
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}",
        "torch": torch.__version__,
    }
    for part in args.only.split(","):
        log(f"running {part}")
        if part == "t99":
            seeds = [int(s) for s in args.seeds.split(",")]
            results.update(time_to_99(seeds, [int(s) for s in args.fast_seeds.split(",")]))
        else:
            results.update(PARTS[part]())
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return 0


def print_table(r: dict) -> None:
    rows = [
        ("data_throughput_ratio", ">= 50", r.get("data_throughput_ratio")),
        ("fit_overhead_ratio", "<= 1.05", r.get("fit_overhead_ratio")),
        ("time_to_99_s (worst seed)", "", r.get("time_to_99_s")),
        ("baseline_time_to_99_s", "", r.get("baseline_time_to_99_s")),
        ("time_to_99_ratio", ">= 50", r.get("time_to_99_ratio")),
        ("fast_time_to_99_s (worst)", "", r.get("fast_time_to_99_s")),
        ("fast_time_to_99_ratio", ">= 20", r.get("fast_time_to_99_ratio")),
        ("fast_seeds_reaching_99", "5", r.get("fast_seeds_reaching_99")),
        ("fast_compute_floor_s", "", r.get("fast_compute_floor_s")),
        ("bf16_step_ratio (1 thread)", ">= 1.3", r.get("bf16_step_ratio")),
        ("bf16_step_ratio_all_threads", "", r.get("bf16_step_ratio_all_threads")),
        ("augment_epoch_ratio", "<= 1.15", r.get("augment_epoch_ratio")),
        ("step_overhead_ratio (median step)", "", r.get("step_overhead_ratio")),
        ("paired_overhead_ratio (median)", "", r.get("paired_overhead_ratio")),
        ("lightning_floor_ratio (bare Trainer)", "", r.get("lightning_floor_ratio")),
        ("lightning_floor_step_ratio (median step)", "", r.get("lightning_floor_step_ratio")),
        ("dlmnist_over_floor_ratio", "", r.get("dlmnist_over_floor_ratio")),
        ("peak_rss_mb", "<= 1500", r.get("peak_rss_mb")),
        ("cli_startup_s (--help)", "<= 3", r.get("cli_startup_s")),
        ("cli_fit_help_s (fit --help)", "", r.get("cli_fit_help_s")),
        ("cli_missing_config_s", "<= 1", r.get("cli_missing_config_s")),
        ("cli_bad_value_s (--model.lr=abc)", "", r.get("cli_bad_value_s")),
        ("cli_unknown_key_s (--model.lrr=1)", "", r.get("cli_unknown_key_s")),
        ("vae_nll_minutes_per_10k (k = 5000)", "<= 5", r.get("vae_nll_minutes_per_10k")),
        ("vae_nll_ratio_float32 (plain / ours)", "", r.get("vae_nll_ratio_float32")),
        ("vae_nll_ratio_bf16 (plain / ours)", "", r.get("vae_nll_ratio_bf16")),
        ("suite_planned_wall_s (jobs 2)", "<= 7200", r.get("suite_planned_wall_s")),
        ("suite_measured_wall_s (full run)", "<= 7200", r.get("suite_measured_wall_s")),
    ]
    print(f"\n{'metric':<34}{'target':<10}measured   ({r['date']}, {r['machine']})")
    for name, target, value in rows:
        print(f"{name:<34}{target:<10}{value}")


if __name__ == "__main__":
    sys.exit(main())

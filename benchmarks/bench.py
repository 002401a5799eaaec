"""`make bench`: dlmnist against the usual way, both sides in this one process on this machine.

Writes benchmarks/results.json with data_throughput_ratio, fit_overhead_ratio, time_to_99_s,
baseline_time_to_99_s, time_to_99_ratio, fast_time_to_99_s, fast_time_to_99_ratio, fast_seeds_reaching_99,
fast_compute_floor_s, bf16_step_ratio (and per model family), augment_epoch_ratio, peak_rss_mb and
cli_startup_s, and prints a table.
`python -m benchmarks.bench --only data,overhead` runs a part; --seeds / --fast_seeds set the seeds of ours.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.baseline import recipe, torchvision_loader, torchvision_root
from dlmnist.data import MNISTDataModule

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "configs" / "cnn.yaml"
FAST = ROOT / "configs" / "cnn_fast.yaml"
DATA = ROOT / "data"
DL = [str(ROOT / ".venv" / "bin" / "dlmnist")]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- data throughput ----------------------------------------------------------------------------
def images_per_s(loader) -> float:
    n, t = 0, time.perf_counter()
    for x, _ in loader:
        n += len(x)
    return n / (time.perf_counter() - t)


def data_throughput(batch_size: int = 256) -> dict:
    dm = MNISTDataModule(data_dir=str(DATA), batch_size=batch_size)
    dm.prepare_data()
    dm.setup("fit")
    ours = max(images_per_s(dm.train_dataloader()) for _ in range(3))
    root = torchvision_root(DATA / "mnist")
    theirs = {w: images_per_s(torchvision_loader(root, True, batch_size, num_workers=w)) for w in (0, 2)}
    best = max(theirs.values())
    return {
        "data_ours_img_s": round(ours),
        "data_torchvision_img_s": {str(k): round(v) for k, v in theirs.items()},
        "data_throughput_ratio": round(ours / best, 1),
    }


# ---- Lightning overhead ------------------------------------------------------------------------
def plain_epoch_s(seed: int = 42, augment: dict | None = None) -> tuple[float, list[float]]:
    """One epoch of configs/cnn.yaml's model, optimizer and schedule in a plain PyTorch loop: (seconds, step times).
    ``augment``: the data module's batch augmentation, e.g. configs/cnn_aug.yaml's."""
    from dlmnist.config import model_from_config

    torch.manual_seed(seed)
    model = model_from_config(CNN)
    dm = MNISTDataModule(data_dir=str(DATA), **_data_args(), augment=augment)
    dm.setup("fit")
    loader = dm.train_dataloader()
    h = model.optim
    opt = torch.optim.AdamW(model.parameters(), lr=h.lr, weight_decay=h.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=h.lr, total_steps=len(loader), pct_start=h.warmup, anneal_strategy="cos", cycle_momentum=False
    )
    model.train()
    steps = []
    t = mark = time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        now = time.perf_counter()
        steps.append(now - mark)
        mark = now
    return time.perf_counter() - t, steps


def _data_args(config: Path = CNN) -> dict:
    """The data block of ``config`` (one file, no overlays), without augmentation."""
    import yaml

    data = yaml.safe_load(config.read_text()).get("data", {}) or {}
    return {k: v for k, v in data.items() if k != "augment"}


def fit_cnn(runs: Path, *extra: str, config: Path = CNN) -> None:
    """`dlmnist fit -c configs/cnn.yaml` (or ``config``) in this process, into ``runs``, with extra arguments."""
    from dlmnist.cli import main

    main(["fit", "-c", str(config), f"--data.data_dir={DATA}", f"--runs_dir={runs}", *extra])


def lightning_epoch_s(runs: Path) -> tuple[float, list[float], float]:
    """One training epoch through `dlmnist fit -c configs/cnn.yaml` (bar, logging, checkpoint on), no val:
    (seconds, step times, seconds from the last step to the end of fit)."""
    out = runs / "epoch_time.json"
    timer = ["--trainer.callbacks+=benchmarks.timing.EpochTimer", f"--trainer.callbacks.out={out}"]
    fit_cnn(runs, "--trainer.max_epochs=1", "--trainer.limit_val_batches=0", *timer)
    r = json.loads(out.read_text())
    return r["epoch_s"], r["steps_s"], r["after_last_step_s"]


def bare_lightning_epoch_s(runs: Path) -> tuple[float, list[float]]:
    """Lightning's own floor: one epoch of the plain loop's work (the model, the cross-entropy, AdamW, the
    one-cycle schedule) through a bare ``L.Trainer``: no logger, checkpoint, progress bar or summary, no callback
    but the timer, a LightningModule whose training_step is the plain loop's line: (seconds, step times)."""
    import lightning as L

    from benchmarks.timing import EpochTimer
    from dlmnist.config import model_from_config
    from dlmnist.models.optim import build_optimizer

    class Bare(L.LightningModule):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def training_step(self, batch, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return build_optimizer(self, self.net.parameters(), self.net.optim)

    torch.manual_seed(42)
    runs.mkdir(parents=True, exist_ok=True)  # the timer writes here; a Trainer without logger makes no folder
    out = runs / "bare_epoch_time.json"
    trainer = L.Trainer(
        max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[EpochTimer(str(out))], default_root_dir=runs,
    )
    trainer.fit(Bare(model_from_config(CNN)), MNISTDataModule(data_dir=str(DATA), **_data_args()))
    r = json.loads(out.read_text())
    return r["epoch_s"], r["steps_s"]


def fit_overhead(repeats: int = 5) -> dict:
    """Best of ``repeats`` interleaved epochs each side, and where a difference comes from: the median step of
    each side (all steps of all repeats), the Lightning epoch's work after its last step, and a bare Trainer's
    epoch between the two (Lightning's floor)."""
    plain, light, bare, plain_steps, light_steps, bare_steps, tails = [], [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # interleaved, so that all sides see the same machine
            s, steps = plain_epoch_s()
            plain.append(s)
            plain_steps += steps
            s, steps, tail = lightning_epoch_s(Path(tmp) / f"r{i}")
            light.append(s)
            light_steps += steps
            tails.append(tail)
            s, steps = bare_lightning_epoch_s(Path(tmp) / f"b{i}")
            bare.append(s)
            bare_steps += steps
    ms = lambda v: round(1000 * v, 2)  # noqa: E731
    return {
        "plain_epoch_s": round(min(plain), 2),
        "lightning_epoch_s": round(min(light), 2),
        "fit_overhead_ratio": round(min(light) / min(plain), 3),
        # each repeat's pair (run back to back): a drift of the machine's speed between repeats cancels in a ratio
        "plain_epochs_s": [round(v, 3) for v in plain],
        "lightning_epochs_s": [round(v, 3) for v in light],
        "paired_overhead_ratio": round(statistics.median(b / a for a, b in zip(plain, light)), 3),
        "plain_step_ms": {"median": ms(statistics.median(plain_steps)), "p90": ms(_p90(plain_steps))},
        "lightning_step_ms": {"median": ms(statistics.median(light_steps)), "p90": ms(_p90(light_steps))},
        "step_overhead_ratio": round(statistics.median(light_steps) / statistics.median(plain_steps), 3),
        "lightning_after_last_step_s": round(min(tails), 3),
        # where the overhead goes: Lightning's own loop (a bare Trainer running the plain loop's step) and what
        # `dlmnist fit` adds on top of it (its callbacks, logging, checkpoints, the model's training metrics)
        "bare_lightning_epoch_s": round(min(bare), 2),
        "lightning_floor_ratio": round(min(bare) / min(plain), 3),
        "lightning_floor_step_ratio": round(statistics.median(bare_steps) / statistics.median(plain_steps), 3),
        "dlmnist_over_floor_ratio": round(min(light) / min(bare), 3),
    }


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def augment_cost(repeats: int = 3) -> dict:
    """An epoch of the default CNN on batches augmented as configs/cnn_aug.yaml does, over the same epoch without
    augmentation: plain loop, best of ``repeats`` interleaved epochs each."""
    import yaml

    augment = yaml.safe_load((CNN.parent / "cnn_aug.yaml").read_text())["data.augment"]
    plain, augmented = [], []
    for _ in range(repeats):
        plain.append(plain_epoch_s()[0])
        augmented.append(plain_epoch_s(augment=augment)[0])
    return {
        "augment": augment,
        "augment_epoch_s": round(min(augmented), 2),
        "augment_epoch_ratio": round(min(augmented) / min(plain), 3),
    }


# ---- time to 99% -------------------------------------------------------------------------------
def ours_time_to_99(seed: int, runs: Path, config: Path = CNN) -> dict:
    out = runs / f"t99_{config.stem}_{seed}.json"
    clock = ["--trainer.callbacks+=benchmarks.timing.TimeToAccuracy", f"--trainer.callbacks.out={out}"]
    fit_cnn(
        runs,
        f"--seed_everything={seed}",
        "--trainer.enable_progress_bar=false",
        *clock,
        f"--trainer.callbacks.data_dir={DATA}",
        config=config,
    )
    return json.loads(out.read_text())


def baseline_time_to_99(max_epochs: int = 8) -> dict:
    from benchmarks.timing import CHECKS_PER_EPOCH as checks_per_epoch
    from benchmarks.timing import test_accuracy

    root = torchvision_root(DATA / "mnist")
    model, opt, sched, loader = recipe(root)
    test = MNISTDataModule(data_dir=str(DATA))
    test.setup("test")
    marks = {round(len(loader) * k / checks_per_epoch) for k in range(1, checks_per_epoch + 1)}
    clock, history = 0.0, []
    for epoch in range(max_epochs):
        model.train()
        t = time.perf_counter()
        for i, (x, y) in enumerate(loader, 1):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i in marks:
                clock += time.perf_counter() - t
                acc = test_accuracy(model, test.test_x, test.test_y)
                history.append((round(epoch + i / len(loader), 3), round(clock, 1), acc))
                log(f"baseline epoch {epoch + i / len(loader):.2f}: {clock:.0f} s, test acc {acc:.4f}")
                if acc >= 0.99:
                    return {"baseline_time_to_99_s": round(clock, 1), "baseline_history": history}
                model.train()
                t = time.perf_counter()
        sched.step()
    return {"baseline_time_to_99_s": None, "baseline_history": history}


def _ours(config: Path, seeds: list[int], prefix: str, baseline_s: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ours = [ours_time_to_99(s, Path(tmp), config) for s in seeds]
    for r in ours:
        log(f"{config.name} seed {r['seed']}: 99% after {r['time_to_target_s']} s; final {r['final_test_acc']}")
    times = [r["time_to_target_s"] for r in ours]
    worst = max(t if t is not None else float("inf") for t in times)
    return {
        f"{prefix}time_to_99_s": worst if worst != float("inf") else None,
        f"{prefix}time_to_99_s_median": statistics.median(times) if None not in times else None,
        f"{prefix}time_to_99_seeds": seeds,
        f"{prefix}seeds_reaching_99": sum(t is not None for t in times),
        f"{prefix}time_to_99_runs": ours,
        f"{prefix}time_to_99_ratio": round(baseline_s / worst, 1) if baseline_s and worst != float("inf") else None,
    }


def time_to_99(seeds: list[int], fast_seeds: list[int]) -> dict:
    """The default CNN (worst of ``seeds``) and the fast recipe (worst of ``fast_seeds``) against the usual recipe,
    all in this run; the fast recipe's compute floor: its FLOPs per epoch over this machine's measured GFLOP/s."""
    base = baseline_time_to_99()
    b = base["baseline_time_to_99_s"]
    out = {**_ours(CNN, seeds, "", b), **base, **_ours(FAST, fast_seeds, "fast_", b)}
    out.update(compute_floor(FAST, out.get("fast_time_to_99_runs") or []))
    return out


def compute_floor(config: Path, runs: list[dict]) -> dict:
    """Seconds the fast recipe's training would take up to 99% at this machine's float32 matmul speed (the FLOPs
    of forward and backward, counted by torch's FlopCounterMode), next to what it took: the distance to the
    hardware. A floor, not a target: convolutions and small layers run well below matmul speed."""
    from torch.utils.flop_counter import FlopCounterMode

    from dlmnist.config import model_from_config

    model = model_from_config(config)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(torch.rand(8, 1, 28, 28)), torch.arange(8)).backward()
    flops = counter.get_total_flops() / 8  # one training image, forward and backward
    n = 4096
    a = torch.randn(n, n)
    a @ a  # warm-up
    t = time.perf_counter()
    for _ in range(3):
        a @ a
    gflops = 3 * 2 * n**3 / (time.perf_counter() - t) / 1e9
    epochs = max((r["history"][[h[2] >= 0.99 for h in r["history"]].index(True)][0] for r in runs
                  if any(h[2] >= 0.99 for h in r["history"])), default=None)
    images = 48000 * (epochs or 0)
    return {
        "fast_train_gflop_per_epoch": round(flops * 48000 / 1e9, 1),
        "machine_fp32_matmul_gflops": round(gflops),
        "fast_compute_floor_s": round(flops * images / 1e9 / gflops, 2) if epochs else None,
    }


# ---- bf16 on the CPU ---------------------------------------------------------------------------
BF16_FAMILIES = ("cnn.yaml", "vit.yaml", "ae_conv.yaml", "vae.yaml")  # one config of each model family


def _step_ms(config: Path, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` milliseconds of one training step of ``config``'s model on one batch of its data
    (the model's own loss, backward, AdamW), in float32 and under CPU bf16 autocast, interleaved."""
    import warnings

    from dlmnist.config import model_from_config

    torch.manual_seed(0)
    model = model_from_config(config)
    dm = MNISTDataModule(data_dir=str(DATA), **_data_args(config))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def run(bf16: bool) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model.step(batch, "train", 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t) / steps

    with warnings.catch_warnings():  # self.log outside a Trainer: Lightning warns and does nothing
        warnings.simplefilter("ignore")
        run(False), run(True)  # warm-up: oneDNN picks its kernels
        fp32, bf16 = [], []
        for _ in range(repeats):
            fp32.append(run(False))
            bf16.append(run(True))
    return 1000 * min(fp32), 1000 * min(bf16)


def bf16_step_ratio(steps: int = 20, repeats: int = 5) -> dict:
    """float32 time / bf16-autocast time of a training step, each best of ``repeats`` interleaved runs, with one
    thread: how every job of `make experiments` runs (``--jobs 2`` on 2 cores) and the issue's probe. The headline
    is the default CNN's (batch 256); one config of every model family (its own batch size) follows, and the
    default CNN once more with all of torch's threads (a lone `dlmnist fit`), ``bf16_step_ratio_all_threads``."""
    from dlmnist.compat import cpu_native_bf16

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        families = {}
        for name in BF16_FAMILIES:
            f, b = _step_ms(CNN.parent / name, steps, repeats)
            families[name] = {"fp32_step_ms": round(f, 1), "bf16_step_ms": round(b, 1), "ratio": round(f / b, 2)}
    finally:
        torch.set_num_threads(threads)
    fp32, bf16 = _step_ms(CNN, steps, repeats)
    cnn = families[CNN.name]
    return {
        "fp32_step_ms": cnn["fp32_step_ms"],
        "bf16_step_ms": cnn["bf16_step_ms"],
        "bf16_step_ratio": cnn["ratio"],
        "bf16_step_ratio_by_config": families,
        "bf16_step_threads": 1,
        "bf16_step_ratio_all_threads": round(fp32 / bf16, 2),
        "bf16_step_ms_all_threads": {"threads": threads, "fp32": round(fp32, 1), "bf16": round(bf16, 1)},
        "cpu_native_bf16": cpu_native_bf16(),
    }


# ---- memory and start-up -----------------------------------------------------------------------
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


PARTS = {"data": data_throughput, "overhead": fit_overhead, "augment": augment_cost, "bf16": bf16_step_ratio,
         "t99": None, "rss": peak_rss_mb, "startup": cli_startup}


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
    ]
    print(f"\n{'metric':<34}{'target':<10}measured   ({r['date']}, {r['machine']})")
    for name, target, value in rows:
        print(f"{name:<34}{target:<10}{value}")


if __name__ == "__main__":
    sys.exit(main())

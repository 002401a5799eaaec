"""`make bench`, part ``t99``: seconds of training to 99% test accuracy, ours (configs/cnn.yaml and the fast recipe,
configs/cnn_fast.yaml, over seeds) against the usual recipe, and the fast recipe's compute floor on this machine."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.baseline import recipe, torchvision_root
from benchmarks.shared import CNN, DATA, FAST, fit_cnn, log
from dlmnist.data import MNISTDataModule


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

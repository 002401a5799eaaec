"""Cost of dlmnist.callbacks.GradientStats per training step: off, on every 50 steps, on every step.

``PYTHONPATH=. .venv/bin/python -m benchmarks.gradient_stats [--config configs/cnn.yaml] [--batches 60] [--repeats 0]``:
first a plain-loop probe (the same steps with and without the statistics, interleaved step by step), then the real
Trainer on the real MNIST data, one process; the median wall time of a training batch (forward, backward,
optimizer step and the callback's hooks) for each setting, the settings interleaved over ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from dlmnist.callbacks import GradientStats
from dlmnist.config import model_from_config
from dlmnist.data import MNISTDataModule

ROOT = Path(__file__).resolve().parents[1]


class CSV(CSVLogger):
    def log_hyperparams(self, *args, **kwargs) -> None:  # the model's frozen Optim is the CLI's business
        pass


class BatchTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.t = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        self.times.append(time.perf_counter() - self.t)


def median_step_ms(config: Path, batches: int, stats: GradientStats | None, data: MNISTDataModule) -> float:
    timer = BatchTimer()  # after GradientStats: its end-of-batch logging is inside the timed span
    callbacks = [stats, timer] if stats is not None else [timer]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=0, logger=CSV(tmp),
                            callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp, log_every_n_steps=50)
        trainer.fit(model_from_config(config), datamodule=data)
    return 1000 * statistics.median(timer.times[5:])  # the first batches warm up


def plain_loop_ms(config: Path, data: MNISTDataModule, steps: int) -> dict[str, float]:
    """Median ms of one training step (forward, backward, AdamW step) in a plain loop, with GradientStats' hooks
    armed and its statistics computed and read back every step ("on") or no callback ("off"), interleaved
    step by step so that both see the same load on a shared machine."""
    import types

    import torch

    torch.manual_seed(0)
    model = model_from_config(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stats = GradientStats(every_n_steps=1, figure=False)
    stats.on_fit_start(None, model)
    trainer = types.SimpleNamespace(loggers=[], global_step=0, log_every_n_steps=1)  # what the hooks read
    data.setup("fit")
    x, y = data.train_x[:256], data.train_y[:256]
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(2 * steps):
        on = i % 2 == 1
        stats._due = on
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if on:
            stats.on_before_optimizer_step(trainer, model, opt)
        opt.step()
        if on:
            stats.on_train_batch_end(trainer, model, None, None, i)
        times["on" if on else "off"].append(time.perf_counter() - t)
    stats.on_fit_end(types.SimpleNamespace(is_global_zero=False), model)
    return {k: 1000 * statistics.median(v[3:]) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(ROOT / "configs" / "cnn.yaml"))
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--plain_steps", type=int, default=40, help="steps per setting of the plain-loop probe")
    args = parser.parse_args()
    data = MNISTDataModule(data_dir=str(ROOT / "data"), batch_size=256)
    plain = plain_loop_ms(Path(args.config), data, args.plain_steps)
    print(f"plain loop, statistics every step: off {plain['off']:.1f} ms, on {plain['on']:.1f} ms a step "
          f"({plain['on'] / plain['off']:.2f}x)")
    if args.repeats == 0:
        return
    settings = {"off": None, "every 50 steps": 50, "every step": 1}
    results: dict[str, list[float]] = {k: [] for k in settings}
    for _ in range(args.repeats):
        for name, every in settings.items():
            stats = None if every is None else GradientStats(every_n_steps=every, figure=False)
            results[name].append(median_step_ms(Path(args.config), args.batches, stats, data))
    for name, ms in results.items():
        print(f"{name:>15}: median step {min(ms):.1f} ms (rounds: {', '.join(f'{m:.1f}' for m in ms)})")


if __name__ == "__main__":
    main()

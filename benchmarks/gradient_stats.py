"""Cost of dlmnist.callbacks.GradientStats per training step: off, on every 50 steps, on every step.

``PYTHONPATH=. .venv/bin/python -m benchmarks.gradient_stats [--config configs/cnn.yaml] [--batches 60]``: the real
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
                            enable_model_summary=False, default_root_dir=tmp, log_every_n_steps=50)  # fmt: skip
        trainer.fit(model_from_config(config), datamodule=data)
    return 1000 * statistics.median(timer.times[5:])  # the first batches warm up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(ROOT / "configs" / "cnn.yaml"))
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    data = MNISTDataModule(data_dir=str(ROOT / "data"), batch_size=256)
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

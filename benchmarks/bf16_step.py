"""`make bench`, part ``bf16``: float32 time over CPU bf16-autocast time of one training step, for one config of
every model family."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks.shared import CNN, DATA, data_args
from dlmnist.data import MNISTDataModule

BF16_FAMILIES = ("cnn.yaml", "vit.yaml", "ae_conv.yaml", "vae.yaml")  # one config of each model family


def _step_ms(config: Path, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` milliseconds of one training step of ``config``'s model on one batch of its data
    (the model's own loss, backward, AdamW), in float32 and under CPU bf16 autocast, interleaved."""
    import warnings

    from dlmnist.config import model_from_config

    torch.manual_seed(0)
    model = model_from_config(config)
    dm = MNISTDataModule(data_dir=str(DATA), **data_args(config))
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
    thread: how every job of `make experiments` runs (``--jobs 2`` on 2 cores). The headline
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

"""Time to 99% of training-recipe variants of the default CNN, in a plain PyTorch loop (no Lightning).

A probe for choosing a default, not part of `make bench`: the model is `configs/cnn.yaml`'s Classifier and
ConvEncoder built from the package, trained with AdamW and a one-cycle schedule on MNISTDataModule's batches;
the test accuracy is checked ``--checks`` times an epoch (the clock stops meanwhile). Prints one JSON line.

    .venv/bin/python -m benchmarks.recipes --epochs 1 --batch_size 128 --seed 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.timing import test_accuracy
from dlmnist.data import MNISTDataModule
from dlmnist.models import Classifier
from dlmnist.nn import ConvEncoder

DATA = Path(__file__).resolve().parents[1] / "data"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__)
    p.add_argument("--epochs", type=float, default=8.0, help="length of the one-cycle schedule")
    p.add_argument("--stop", type=float, default=None, help="stop after this many epochs (default: --epochs)")
    p.add_argument("--lr", type=float, default=0.004)
    p.add_argument("--warmup", type=float, default=0.2)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--channels", type=int, nargs=2, default=[24, 32])
    p.add_argument("--latent_dim", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--nchw", action="store_true", help="default memory layout instead of channels-last")
    p.add_argument("--ema", type=float, default=0.0, help="check an exponential moving average of the weights")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast around forward and loss (CPU)")
    p.add_argument("--checks", type=int, default=4, help="test-accuracy checks per epoch")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    encoder = ConvEncoder(
        channels=a.channels,
        kernel_sizes=[5, 3],
        paddings=0,
        pool_first=True,
        latent_dim=a.latent_dim,
        dropout=a.dropout,
        channels_last=not a.nchw,
    )
    model = Classifier(encoder, head_hidden=[])
    dm = MNISTDataModule(data_dir=str(DATA), batch_size=a.batch_size)
    dm.setup("fit")
    loader, n = dm.train_dataloader(), len(dm.train_dataloader())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=a.lr, total_steps=round(a.epochs * n), pct_start=a.warmup, cycle_momentum=False
    )
    checked = model
    if a.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        checked = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(a.ema), use_buffers=True)
    every, stop = max(1, n // a.checks), round((a.stop or a.epochs) * n)
    clock, step, history, reached = 0.0, 0, [], None
    model.train()
    t = time.perf_counter()
    while step < stop:
        for x, y in loader:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if checked is not model:
                checked.update_parameters(model)
            step += 1
            if step % every == 0 or step == stop:
                clock += time.perf_counter() - t
                acc = test_accuracy(checked, dm.test_x, dm.test_y)
                model.train()
                history.append((round(step / n, 3), round(clock, 2), acc))
                if reached is None and acc >= 0.99:
                    reached = history[-1][:2]
                t = time.perf_counter()
            if step == stop:
                break
    result = {"args": vars(a), "reached_99": reached, "final": history[-1], "s_per_epoch": round(clock * n / stop, 2)}
    print(json.dumps({**result, "history": history}))
    return result


if __name__ == "__main__":
    main()

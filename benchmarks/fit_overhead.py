"""`make bench`, parts ``overhead`` and ``augment``: an epoch of configs/cnn.yaml through `dlmnist fit` against the
same work in a plain PyTorch loop and in a bare Lightning Trainer, and the cost of batch augmentation."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.shared import CNN, DATA, data_args, fit_cnn, p90
from dlmnist.data import MNISTDataModule


def plain_epoch_s(seed: int = 42, augment: dict | None = None) -> tuple[float, list[float]]:
    """One epoch of configs/cnn.yaml's model, optimizer and schedule in a plain PyTorch loop: (seconds, step times).
    ``augment``: the data module's batch augmentation, e.g. configs/cnn_aug.yaml's."""
    from dlmnist.config import model_from_config

    torch.manual_seed(seed)
    model = model_from_config(CNN)
    dm = MNISTDataModule(data_dir=str(DATA), **data_args(), augment=augment)
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
    trainer.fit(Bare(model_from_config(CNN)), MNISTDataModule(data_dir=str(DATA), **data_args()))
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
        "plain_step_ms": {"median": ms(statistics.median(plain_steps)), "p90": ms(p90(plain_steps))},
        "lightning_step_ms": {"median": ms(statistics.median(light_steps)), "p90": ms(p90(light_steps))},
        "step_overhead_ratio": round(statistics.median(light_steps) / statistics.median(plain_steps), 3),
        "lightning_after_last_step_s": round(min(tails), 3),
        # where the overhead goes: Lightning's own loop (a bare Trainer running the plain loop's step) and what
        # `dlmnist fit` adds on top of it (its callbacks, logging, checkpoints, the model's training metrics)
        "bare_lightning_epoch_s": round(min(bare), 2),
        "lightning_floor_ratio": round(min(bare) / min(plain), 3),
        "lightning_floor_step_ratio": round(statistics.median(bare_steps) / statistics.median(plain_steps), 3),
        "dlmnist_over_floor_ratio": round(min(light) / min(bare), 3),
    }


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

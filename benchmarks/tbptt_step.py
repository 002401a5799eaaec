"""Truncated BPTT's cost per training step of configs/rnn.yaml's row GRU: full backpropagation through the 28 rows
against ``tbptt_steps`` of 14, 7 and 4, interleaved in one process on one real MNIST batch (one thread, best of
``--repeats``). ``python -m benchmarks.tbptt_step``; docs/sequence-models.md shows a run."""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.shared import DATA
from dlmnist.data import MNISTDataModule
from dlmnist.models import Classifier
from dlmnist.nn import RowRNN

TRUNCATIONS = (None, 14, 7, 4)


def step_ms(steps: int, repeats: int, batch_size: int = 128) -> dict:
    """Best-of-``repeats`` milliseconds of one training step (forward, loss, backward, AdamW) per truncation."""
    import warnings

    torch.set_num_threads(1)
    dm = MNISTDataModule(data_dir=str(DATA), batch_size=batch_size)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    torch.manual_seed(0)
    models = {k: Classifier(RowRNN(tbptt_steps=k)) for k in TRUNCATIONS}
    optims = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def run(k) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            loss = models[k].step(batch, "train", 0)
            optims[k].zero_grad(set_to_none=True)
            loss.backward()
            optims[k].step()
        return (time.perf_counter() - t) / steps

    times: dict = {k: [] for k in TRUNCATIONS}
    with warnings.catch_warnings():  # self.log outside a Trainer: Lightning warns and does nothing
        warnings.simplefilter("ignore")
        for k in TRUNCATIONS:
            run(k)  # warm-up
        for _ in range(repeats):
            for k in TRUNCATIONS:
                times[k].append(run(k))
    return {("full" if k is None else f"tbptt_{k}"): round(1000 * min(v), 2) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings per truncation (best kept)")
    args = parser.parse_args()
    result = step_ms(args.steps, args.repeats)
    full = result["full"]
    for name, ms in result.items():
        print(f"{name:9s} {ms:8.2f} ms/step  ({ms / full:.2f} of full BPTT)")


if __name__ == "__main__":
    main()

"""``dlmnist curves RUN [RUN ...] --out FILE.png``: the training curves of several runs in one figure (e.g. the
100-label runs from scratch and from a pretrained encoder, to see over-fitting): every metric of each run's
``metrics.csv`` over epochs (``--x step``: over optimizer steps), with its test values from ``test_metrics.json``
as stars. ``--target_loss L`` also prints, per run, the first step at which its training loss is at or below
``L``, averaged over the last ``--window`` logged values (e.g. batch size B against 2B: steps to the same loss)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlmnist.runs import read_metrics, read_test
from dlmnist.utils.curve_figure import save_curves, steps_per_epoch, steps_to

TRAIN_LOSS = ("train/loss_step", "train/loss", "train/loss_epoch")  # the finest-grained column a run has


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist curves", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (runs/<name>/version_<n>)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--x", choices=["epoch", "step"], default="epoch", help="x axis: epochs or optimizer steps")
    parser.add_argument("--target_loss", type=float, default=None, help="print the steps to this training loss")
    parser.add_argument("--window", type=int, default=5, help="--target_loss: mean of this many logged values")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "metrics.csv").is_file():
            parser.error(f"{run}: no metrics.csv (not a run folder?)")
    labels = [f"{run.parent.name}/{run.name}" if len(args.runs) > 1 else "" for run in args.runs]
    runs = [(label, read_metrics(run), read_test(run)) for label, run in zip(labels, args.runs)]
    if args.target_loss is not None:
        for run, (_, metrics, _) in zip(args.runs, runs):
            column = next((c for c in TRAIN_LOSS if c in metrics), None)
            found = steps_to(metrics, column, args.target_loss, args.window) if column else None
            where = "never" if found is None else f"step {found:g} (epoch {found / steps_per_epoch(metrics):.2f})"
            print(f"{run}: {column or 'no training loss'} (mean of {args.window}) <= {args.target_loss:g}: {where}")
    title = ", ".join(str(r) for r in args.runs) if len(runs) == 1 else ""
    if save_curves(runs, args.out, title=title, x=args.x):
        print(f"written {args.out}")
        return 0
    print(f"dlmnist curves: nothing to draw in {', '.join(map(str, args.runs))}")
    return 1

"""``dlmnist curves RUN [RUN ...] --out FILE.png``: the training curves of several runs in one figure (e.g. the
100-label runs from scratch and from a pretrained encoder, to see over-fitting): every metric of each run's
``metrics.csv`` over epochs, with its test values from ``test_metrics.json`` as stars."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlmnist.runs import read_metrics, read_test
from dlmnist.utils.curve_figure import save_curves


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist curves", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (runs/<name>/version_<n>)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "metrics.csv").is_file():
            parser.error(f"{run}: no metrics.csv (not a run folder?)")
    labels = [f"{run.parent.name}/{run.name}" if len(args.runs) > 1 else "" for run in args.runs]
    runs = [(label, read_metrics(run), read_test(run)) for label, run in zip(labels, args.runs)]
    if save_curves(runs, args.out, title=", ".join(str(r) for r in args.runs) if len(runs) == 1 else ""):
        print(f"written {args.out}")
        return 0
    print(f"dlmnist curves: nothing to draw in {', '.join(map(str, args.runs))}")
    return 1

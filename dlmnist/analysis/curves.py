"""``dlmnist curves RUN [RUN ...] --out FILE.png``: train and validation loss/accuracy over training, from
each run's ``metrics.csv`` (e.g. the 100-label runs from scratch and from a pretrained encoder, to see
over-fitting); the test value of ``test_metrics.json``, when there is one, is drawn as a dashed line."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from dlmnist.utils.figures import figure_png, pyplot
from dlmnist.utils.files import atomic_write_bytes


def read_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(step, value), ...]}`` for every column of ``run/metrics.csv``."""
    curves: dict[str, list[tuple[int, float]]] = {}
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("epoch", "step") and value:
                    curves.setdefault(key, []).append((int(row["step"]), float(value)))
    return curves


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist curves", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (runs/<name>/version_<n>)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "metrics.csv").is_file():
            parser.error(f"{run}: no metrics.csv (not a run folder?)")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, run in enumerate(args.runs):
        curves = read_curves(run)
        test = json.loads((run / "test_metrics.json").read_text()) if (run / "test_metrics.json").exists() else {}
        color = plt.cm.tab10(i)
        for ax, metric in zip(axes, ("loss", "acc")):
            for stage, style in (("train", ":"), ("val", "-")):
                points = curves.get(f"{stage}/{metric}_epoch") or curves.get(f"{stage}/{metric}") or []
                if points:
                    steps, values = zip(*points)
                    ax.plot(steps, values, style, color=color, label=f"{run.parent.name} {stage}")
            if f"test/{metric}" in test:
                ax.axhline(test[f"test/{metric}"], ls="--", color=color, lw=0.8, label=f"{run.parent.name} test")
            ax.set(xlabel="step", ylabel=metric)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7)
    atomic_write_bytes(args.out, figure_png(fig))
    print(f"written {args.out}")
    return 0

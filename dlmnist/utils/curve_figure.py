"""Training curves of run folders: the one plotter (the runs are read by :mod:`dlmnist.runs`).

Used by ``dlmnist fit`` (``figures/curves.png`` in the run folder), ``dlmnist curves RUN... --out FILE.png``
and ``dlmnist report``. One panel per metric (loss first); the x axis is in epochs: a value logged at the end
of epoch ``e`` sits at ``e + 1``, a per-step value at its step's share of the epochs (or, ``x="step"``, in
optimizer steps, so that runs with different batch sizes compare step for step). Every point has a marker,
so a one-epoch run is visible; the test values (``test_metrics.json``, or ``test/`` columns) are drawn as
stars after the last epoch. Several runs: one colour per run, line style per stage (train dotted, val solid).
"""

from __future__ import annotations

import re
from pathlib import Path

from dlmnist.utils.figures import colormap, figure_png, subplots
from dlmnist.utils.files import Metrics, atomic_write_bytes

STAGES = ("train", "val", "test")
COLUMN = re.compile(r"^(train|val|test)/(.+?)(_step|_epoch)?$")  # train/loss_step -> (train, loss, _step)
STAGE_COLOR = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
STAGE_STYLE = {"train": ":", "val": "-", "test": ""}


def group_columns(metrics: Metrics) -> dict[str, dict[str, str]]:
    """``{metric: {series: column}}``, e.g. ``{"loss": {"train (step)": "train/loss_step", "val": "val/loss"}}``."""
    panels: dict[str, dict[str, str]] = {}
    for column in sorted(metrics):
        if m := COLUMN.match(column):
            stage, metric, suffix = m.groups()
            panels.setdefault(metric, {})[stage + (" (step)" if suffix == "_step" else "")] = column
    return {k: panels[k] for k in sorted(panels, key=lambda k: (k != "loss", k))}


def steps_per_epoch(metrics: Metrics) -> float:
    """Optimizer steps per epoch, from the last logged (epoch, step)."""
    last = max((p for col in metrics.values() for p in col), key=lambda p: (p[1], p[0]))
    return max(last[1] + 1, 1) / (last[0] + 1)


def epoch_axis(metrics: Metrics, column: str) -> list[float]:
    """x in epochs: an epoch-level value at ``epoch + 1``, a per-step value at ``step / steps per epoch``."""
    points = metrics[column]
    if not column.endswith("_step"):
        return [e + 1.0 for e, _, _ in points]
    per_epoch = steps_per_epoch(metrics)
    return [(s + 1) / per_epoch for _, s, _ in points]


def step_axis(metrics: Metrics, column: str) -> list[float]:
    """x in optimizer steps: :func:`epoch_axis` times the steps per epoch (an epoch's value at its last step)."""
    per_epoch = steps_per_epoch(metrics)
    return [x * per_epoch for x in epoch_axis(metrics, column)]


def steps_to(metrics: Metrics, column: str, target: float, window: int = 1) -> float | None:
    """The first step (:func:`step_axis`) at which the mean of the last ``window`` values of ``column`` is at or
    below ``target`` (a window smooths the noise of per-batch losses); None if it never is."""
    if column not in metrics:
        return None
    values = [v for _, _, v in metrics[column]]
    xs = step_axis(metrics, column)
    means = ((xs[i], sum(values[i + 1 - window : i + 1]) / window) for i in range(window - 1, len(values)))
    return next((x for x, mean in means if mean <= target), None)


def curves_figure(runs: list[tuple[str, Metrics, dict[str, float]]], title: str = "", max_panels: int = 9,
                  x: str = "epoch"):
    """A figure of every train/val/test metric of the given ``(label, metrics, test values)``, or None.
    ``x``: ``epoch`` or ``step`` (optimizer steps: runs with different batch sizes side by side)."""
    axis = {"epoch": epoch_axis, "step": step_axis}[x]
    panels: dict[str, dict[str, dict[str, str]]] = {}  # metric -> run label -> series -> column
    for label, metrics, test in runs:
        for metric, series in group_columns(metrics).items():
            panels.setdefault(metric, {})[label] = series
        for key in test:
            panels.setdefault(key.removeprefix("test/"), {}).setdefault(label, {})
    panels = dict(sorted(panels.items(), key=lambda kv: (kv[0] != "loss", kv[0]))[:max_panels])
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    several = len(runs) > 1
    for ax, (metric, by_run) in zip(axes.flat, panels.items()):
        for i, (label, metrics, test) in enumerate(runs):
            series = by_run.get(label, {})
            end = max((e + 1 for col in metrics.values() for e, _, _ in col), default=1)
            end = end * steps_per_epoch(metrics) if x == "step" and metrics else end
            for name, column in sorted(series.items(), key=lambda kv: (STAGES.index(kv[0].split()[0]), kv[0])):
                stage, thin = name.split()[0], name.endswith("(step)")
                color = colormap("tab10")(i % 10) if several else STAGE_COLOR[stage]
                xs, ys = axis(metrics, column), [v for _, _, v in metrics[column]]
                style = STAGE_STYLE[stage] or "-"
                ax.plot(
                    xs,
                    ys,
                    style,
                    color=color,
                    marker="." if thin else "o",
                    ms=3 if thin else 5,
                    lw=1 if thin else 1.8,
                    alpha=0.35 if thin else 1,
                    label=f"{label} {name}".strip(),
                )
            if f"test/{metric}" in test and "test" not in series:
                color = colormap("tab10")(i % 10) if several else STAGE_COLOR["test"]
                ax.plot([end], [test[f"test/{metric}"]], "*", color=color, ms=11, label=f"{label} test".strip())
        ax.set(title=metric, xlabel=x)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_curves(
    runs: list[tuple[str, Metrics, dict[str, float]]], path: Path, title: str = "", x: str = "epoch"
) -> Path | None:
    """Draw :func:`curves_figure` into ``path`` (PNG, written atomically); None when there is nothing to draw."""
    fig = curves_figure(runs, title, x=x)
    if fig is None:
        return None
    return atomic_write_bytes(Path(path), figure_png(fig))

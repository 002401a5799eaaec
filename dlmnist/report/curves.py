"""Training curves from a run's metrics.csv: one panel per metric, train / val (/ test) over training steps."""

from __future__ import annotations

import io
import re
from pathlib import Path

from dlmnist.utils.files import atomic_write_bytes

STAGES = ("train", "val", "test")
COLUMN = re.compile(r"^(train|val|test)/(.+?)(_step|_epoch)?$")  # train/loss_step -> (train, loss, _step)
STYLE = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}


def group_columns(metrics: dict[str, list]) -> dict[str, dict[str, str]]:
    """``{metric: {series label: column}}``: ``{"loss": {"train (step)": "train/loss_step", "val": "val/loss"}}``."""
    panels: dict[str, dict[str, str]] = {}
    for column in sorted(metrics):
        m = COLUMN.match(column)
        if m:
            stage, metric, suffix = m.groups()
            label = stage + (" (step)" if suffix == "_step" else "")
            panels.setdefault(metric, {})[label] = column
    order = sorted(panels, key=lambda k: (k != "loss", k))  # loss first, then alphabetical
    return {k: panels[k] for k in order}


def curves_figure(metrics: dict[str, list], title: str, max_panels: int = 9):
    """A matplotlib figure of every train/val/test metric logged during fit, or None when there is none."""
    panels = dict(list(group_columns(metrics).items())[:max_panels])
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(3, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, (metric, series) in zip(axes.flat, panels.items()):
        for label, column in sorted(series.items(), key=lambda kv: (STAGES.index(kv[0].split()[0]), kv[0])):
            points = metrics[column]
            steps, values = [p[1] for p in points], [p[2] for p in points]
            thin = label.endswith("(step)")
            marker = None if thin or len(steps) > 30 else "o"
            color = STYLE[label.split()[0]]
            ax.plot(
                steps, values, color=color, label=label, alpha=0.35 if thin else 1, lw=1 if thin else 1.8, marker=marker
            )
        epochs = max((p[0] for s in series.values() for p in metrics[s]), default=0) + 1
        ax.set(title=metric, xlabel=f"step ({epochs} epoch{'s' if epochs > 1 else ''})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_curves(metrics: dict[str, list], title: str, path: Path) -> Path | None:
    fig = curves_figure(metrics, title)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())

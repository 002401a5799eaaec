"""One experiment's numbers, read from its run folder: config values, parameters, validation and test metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlmnist.config import instantiate_model
from dlmnist.models.base import Model
from dlmnist.runs import pick_run, read_json, read_metrics, suite_record
from dlmnist.utils.stats import mean_std


@dataclass
class Experiment:
    name: str
    run: Path | None
    config: dict[str, Any] = field(default_factory=dict)  # the run's resolved config.yaml
    record: dict[str, Any] = field(default_factory=dict)  # suite.json (commands, wall times), if the suite ran it
    test: dict[str, Any] = field(default_factory=dict)  # test_metrics.json
    metrics: dict[str, list] = field(default_factory=dict)  # metrics.csv columns
    model: Any = None  # the LightningModule built from config.yaml (for parameters and layers), or None

    def get(self, dotted: str) -> Any:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node


def load_experiment(runs_dir: Path, name: str) -> Experiment:
    run = pick_run(runs_dir / name)
    if run is None:
        return Experiment(name, None)
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    exp = Experiment(
        name, run, config or {}, suite_record(run), read_json(run / "test_metrics.json"), read_metrics(run)
    )
    try:
        exp.model = instantiate_model(exp.config["model"])
    except Exception as e:  # noqa: BLE001 (e.g. a pretrained-encoder checkpoint that is gone: show the rest)
        print(f"[report] {name}: model not rebuilt from {run / 'config.yaml'} ({type(e).__name__}: {e})")
    return exp


def partial(e: Experiment) -> str:
    """``"partial test: N of M test images"`` when the run's test did not see the whole test set, else ""."""
    if not e.test.get("partial"):
        return ""
    return f"partial test: {e.test.get('test_images', '?')} of {e.test.get('test_images_total', '?')} test images"


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "-".join(fmt(v) for v in value)
    return str(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def params(exp: Experiment) -> str:
    if exp.model is None:
        return "—"
    total = sum(p.numel() for p in exp.model.parameters())
    trainable = sum(p.numel() for p in exp.model.parameters() if p.requires_grad)
    return f"{total:,}" + (f" ({trainable:,} trainable)" if trainable != total else "")


def best_val_value(exp: Experiment) -> tuple[str | None, float | None]:
    """``(metric, best value)`` of the metric best.ckpt is chosen by (the model's ``monitor``), from metrics.csv."""
    metric, mode = (exp.model or Model).monitor  # the base's default when the model could not be built
    values = [v for _, _, v in exp.metrics.get(metric, [])]
    return metric, (max(values) if mode == "max" else min(values)) if values else None


def best_val(exp: Experiment) -> tuple[str | None, str]:
    metric, value = best_val_value(exp)
    return metric, fmt(value)


def receptive_field(exp: Experiment) -> str:
    """Receptive field of the encoder's last spatial layer, from the walk `dlmnist summarize` prints."""
    from dlmnist.analysis.walk import spatial_receptive_field, summarize_module

    if exp.model is None:
        return "—"
    found = spatial_receptive_field(summarize_module(exp.model, (1, 28, 28)))
    return "—" if found is None else f"{found[0]} px"


def pca_auroc(exp: Experiment) -> str:
    """The no-network baseline of the anomaly protocol: AUROC of the run's held-out digits by PCA reconstruction
    error, with as many components as the autoencoder's code and the same training images."""
    from dlmnist.analysis.anomaly import pca_auroc as auroc
    from dlmnist.data import MNISTDataModule

    held_out, k = exp.get("data.exclude_classes"), exp.get("model.init_args.encoder.init_args.latent_dim")
    if not held_out or not k:
        return "—"
    dm = MNISTDataModule(**{**exp.config["data"], "augment": None, "data_on_device": False, "download": False})
    dm.setup("fit")
    return fmt(auroc(dm.train_x, dm.test_x, dm.test_y, held_out, k))


def _layer_grad(exp: Experiment, which: int) -> str:
    """Gradient norm of the first (``which=0``) or last (``-1``) layer with parameters, as logged by
    ``dlmnist.callbacks.GradientStats`` (``grad_norm/<layer>`` in metrics.csv): its first and last value."""
    if exp.model is None:
        return "—"
    layers = [n for n, m in exp.model.named_modules() if f"grad_norm/{n or 'model'}" in exp.metrics]
    if not layers:
        return "—"
    values = [v for _, _, v in exp.metrics[f"grad_norm/{layers[which] or 'model'}"]]
    return f"{values[0]:.2g} → {values[-1]:.2g}"


# Computed columns a report section can ask for (`computed: [receptive_field]` in configs/suite.yaml).
COMPUTED: dict[str, tuple[str, Callable[[Experiment], str]]] = {
    "receptive_field": ("receptive field", receptive_field),
    "pca_auroc": ("PCA baseline test/auroc", pca_auroc),
    "grad_first": ("grad norm, first layer (start → end)", lambda e: _layer_grad(e, 0)),
    "grad_last": ("grad norm, last layer (start → end)", lambda e: _layer_grad(e, -1)),
}


def spread(values: list[Any]) -> str:
    """One run: its value; several (the seeds of one experiment): ``mean ± std`` (sample standard deviation)."""
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return "—"
    if len(numbers) == 1:
        return fmt(numbers[0])
    mean, std = mean_std(numbers)
    return f"{mean:.4g} ± {std:.2g}"


def section_table(
    exps: list[Experiment | list[Experiment]], columns: dict[str, str], computed: list[str], mean: bool = False
) -> list[str]:
    """Markdown table, one row per experiment: data set, config columns, parameters, computed columns, how many
    runs, the best validation metric, every test metric any of them wrote, and the fit's wall time.

    A list of experiments (the seeds of one, ``seeds:`` in configs/suite.yaml) is one row: every metric as
    ``mean ± std`` over the runs, "n seeds" in the runs column; a single run says "1 run". ``mean``: a last row
    with the mean of every metric column over the rows.
    """
    groups = [g if isinstance(g, list) else [g] for g in exps]
    ran_groups = [[e for e in g if e.run is not None] for g in groups]
    every = [e for g in ran_groups for e in g]
    test_keys = sorted({k for e in every for k in e.test if k.startswith("test/")})
    monitors = sorted({m for e in every if (m := best_val(e)[0])})  # None: best.ckpt is the newest epoch
    head = ["experiment", "data", *columns, "params", "runs", *(COMPUTED[c][0] for c in computed)]
    head += [f"best {m}" for m in monitors] + test_keys + ["fit time"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    numeric: list[list[float | None]] = []
    for group, ran in zip(groups, ran_groups):
        if not ran:
            rows.append(f"| {group[0].name} | " + " | ".join(["not run"] + ["—"] * (len(head) - 2)) + " |")
            continue
        e = ran[0]
        metric = best_val(e)[0]
        runs = f"{len(ran)} seeds" if len(group) > 1 else "1 run"
        runs += f" (of {len(group)})" if len(group) > 1 and len(ran) < len(group) else ""
        name = e.name + (" (partial test)" if any(partial(x) for x in ran) else "")
        cells = [name, fmt(e.get("data.dataset"))] + [fmt(e.get(key)) for key in columns.values()]
        extra = [COMPUTED[c][1](e) for c in computed]  # of the first run
        cells += [params(e), runs] + extra
        values = [[best_val_value(x)[1] for x in ran] if m == metric else [] for m in monitors]
        values += [[x.test.get(k) for x in ran] for k in test_keys]
        cells += [spread(v) for v in values]
        numeric.append([_number(c) for c in extra] + [_mean_or_none(v) for v in values])
        fit = [x.record.get("fit_seconds") for x in ran if x.record.get("fit_seconds") is not None]
        rows.append("| " + " | ".join(cells + [duration(sum(fit) / len(fit) if fit else None)]) + " |")
    if mean and len(numeric) > 1:
        lead = len(head) - len(numeric[0]) - 1  # the columns before the metrics
        means = [fmt(_mean_or_none(list(col))) for col in zip(*numeric)]
        rows.append("| **mean** | " + " | ".join([""] * (lead - 1) + means + [""]) + " |")
    return rows


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _mean_or_none(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return sum(numbers) / len(numbers) if numbers else None

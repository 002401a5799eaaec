"""One experiment's numbers, read from its run folder: config values, parameters, validation and test metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlmnist.suite.runs import pick_run, read_json, suite_record
from dlmnist.utils.curves import read_metrics


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


def build_model(config: dict[str, Any]):
    """The run's model, built from its config exactly as the CLI does (class_path/init_args)."""
    import lightning as L
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningModule, "model")
    return parser.instantiate_classes(parser.parse_object({"model": config["model"]})).model


def load_experiment(runs_dir: Path, name: str) -> Experiment:
    run = pick_run(runs_dir / name)
    if run is None:
        return Experiment(name, None)
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    exp = Experiment(
        name, run, config or {}, suite_record(run), read_json(run / "test_metrics.json"), read_metrics(run)
    )
    try:
        exp.model = build_model(exp.config)
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


def best_val(exp: Experiment) -> tuple[str, str]:
    """``(metric, best value)`` of the metric best.ckpt is chosen by (the model's ``monitor``), from metrics.csv."""
    metric, mode = getattr(exp.model, "monitor", ("val/loss", "min"))
    values = [v for _, _, v in exp.metrics.get(metric, [])]
    if not values:
        return metric, "—"
    return metric, fmt(max(values) if mode == "max" else min(values))


def receptive_field(exp: Experiment) -> str:
    """Receptive field of the encoder's last spatial layer, from the walk `dlmnist summarize` prints."""
    from dlmnist.analysis.walk import spatial_receptive_field, summarize_module

    if exp.model is None:
        return "—"
    found = spatial_receptive_field(summarize_module(exp.model, (1, 28, 28)))
    return "—" if found is None else f"{found[0]} px"


# Computed columns a report section can ask for (`computed: [receptive_field]` in configs/suite.yaml).
COMPUTED: dict[str, tuple[str, Callable[[Experiment], str]]] = {
    "receptive_field": ("receptive field", receptive_field),
}


def section_table(exps: list[Experiment], columns: dict[str, str], computed: list[str]) -> list[str]:
    """Markdown table, one row per experiment: data set, config columns, parameters, computed columns,
    the best validation metric, every test metric any of them wrote, and the fit's wall time."""
    test_keys = sorted({k for e in exps for k in e.test if k.startswith("test/")})
    monitors = sorted({m for e in exps if e.run and (m := best_val(e)[0])})  # None: best.ckpt is the newest epoch
    head = ["experiment", "data", *columns, "params", *(COMPUTED[c][0] for c in computed)]
    head += [f"best {m}" for m in monitors] + test_keys + ["fit time"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in exps:
        if e.run is None:
            rows.append(f"| {e.name} | " + " | ".join(["not run"] + ["—"] * (len(head) - 2)) + " |")
            continue
        metric, value = best_val(e)
        name = e.name + (" (partial test)" if partial(e) else "")
        cells = [name, fmt(e.get("data.dataset"))] + [fmt(e.get(key)) for key in columns.values()]
        cells += [params(e)] + [COMPUTED[c][1](e) for c in computed]
        cells += [value if m == metric else "—" for m in monitors] + [fmt(e.test.get(k)) for k in test_keys]
        rows.append("| " + " | ".join(cells + [duration(e.record.get("fit_seconds"))]) + " |")
    return rows

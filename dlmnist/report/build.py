"""``dlmnist report``: write ``reports/README.md`` from the run folders, every number and picture taken from them.

Sections come from the ``report:`` block of ``configs/suite.yaml``: per section a table (data set,
chosen config values, parameters, the best validation metric, every test metric, fit time), then per
experiment its curves (drawn here from metrics.csv), the figures the run saved, and the commands that
made it. Experiments without a run say "not run"; runs that no section names come last.
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlmnist import recipes
from dlmnist.report.tables import Experiment, duration, fmt, load_experiment, partial, section_table, spread
from dlmnist.runs import read_json, versions
from dlmnist.suite.graph import load_graph
from dlmnist.utils.curve_figure import save_curves
from dlmnist.utils.figures import figure_png, subplots
from dlmnist.utils.files import atomic_write_bytes, atomic_write_text
from dlmnist.utils.stats import mean_std


def experiment_names(runs_dir: Path, graph_names: list[str]) -> list[str]:
    """The graph's experiments, then any other ``runs_dir/<name>`` holding a run (e.g. one a user fitted by hand)."""
    found = sorted(p.name for p in runs_dir.glob("*") if p.is_dir() and versions(p))
    return list(dict.fromkeys([*graph_names, *found]))


def match(patterns: list[str], names: list[str]) -> list[str]:
    """Names matching the patterns, in pattern order; a plain name that matches nothing is kept (shown as not run)."""
    out: list[str] = []
    for pat in patterns:
        hits = [n for n in names if fnmatch.fnmatch(n, pat)]
        out += hits if hits or any(c in pat for c in "*?[") else [pat]
    return list(dict.fromkeys(out))


class Report:
    def __init__(self, runs_dir: Path, out: Path) -> None:
        self.runs_dir, self.out = runs_dir, out
        self.family: dict[str, list[str]] = {}  # experiment -> the experiments of its entry's seeds
        self.grids: dict[str, dict[str, dict[str, str]]] = {}  # grid -> row -> column -> experiment
        self.cache: dict[str, Experiment] = {}
        self.detailed: set[str] = set()

    def exp(self, name: str) -> Experiment:
        if name not in self.cache:
            self.cache[name] = load_experiment(self.runs_dir, name)
        return self.cache[name]

    def figures(self, e: Experiment) -> list[tuple[str, str]]:
        """``(label, path relative to the report)``: the curves drawn here, then the run's figures/*.png copied over."""
        folder = self.out / "figures" / e.name
        found = []
        if save_curves([("", e.metrics, e.test)], folder / "curves.png", f"{e.name} ({e.run.name})"):
            found.append(("curves", f"figures/{e.name}/curves.png"))
        for png in sorted((e.run / "figures").glob("*.png")):
            if found and png.name == "curves.png":  # the fit's own curves: the same picture as the one drawn above
                continue
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, folder / png.name)
            found.append((png.stem.replace("__", "/"), f"figures/{e.name}/{png.name}"))
        return found

    def details(self, e: Experiment, show_figures: bool) -> list[str]:
        rec = e.record
        lines = [f"### {e.name}", "", f"Run `{e.run}`."]
        if rec:
            fit, test = duration(rec.get("fit_seconds")), duration(rec.get("test_seconds"))
            lines.append(f"Fit {fit}, test {test} (wall time) on {rec.get('machine', '?')}.")
            lines += [f"\n    {rec[key]}" for key in ("fit_command", "test_command") if rec.get(key)]
        if e.test:
            rows = [f"| {k} | {fmt(v)} |" for k, v in e.test.items() if k.startswith("test/")]
            lines += [f"\n_{partial(e)}_"] if partial(e) else []
            lines += ["", "| test metric | value |", "|---|---|"] + rows
        else:
            lines += ["", "_not tested (no test_metrics.json)_"]
        if show_figures:
            lines += [""] + [f"![{label}]({path})" for label, path in self.figures(e)]
        return lines + [""]

    def grid(self, exps: list[Experiment]) -> list[str]:
        """One column per experiment, one row per figure name, so that the same picture lines up across runs."""
        figs = {e.name: dict(self.figures(e)) for e in exps}
        labels = list(dict.fromkeys(label for f in figs.values() for label in f))
        lines = ["| figure | " + " | ".join(e.name for e in exps) + " |", "|---|" + "---|" * len(exps)]
        for label in labels:
            cells = [f"![{e.name} {label}]({figs[e.name][label]})" if label in figs[e.name] else "—" for e in exps]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return lines + [""]

    def groups(self, names: list[str]) -> list[list[str]]:
        """The names in order, each with the other seeds of its entry (at the first one's place)."""
        out, seen = [], set()
        for name in names:
            if name not in seen:
                group = self.family.get(name, [name])
                seen |= set(group)
                out.append(group)
        return out

    def grid_section(self, spec: dict[str, Any]) -> list[str]:
        """A grid of configs/suite.yaml as one table (rows by columns, ``metric`` as mean ± std over the seeds) and a
        figure of the metric against the number of training labels, one line per row, with error bars."""
        name, metric = spec["grid"], spec.get("metric", "test/acc")
        cells = self.grids.get(name) or {}
        lines = [f"## {spec['title']}", ""]
        if not cells:
            return lines + [f"_no grid {name!r} in the suite_", ""]
        columns = list(next(iter(cells.values())))
        lines += [f"`{metric}`, mean ± std over seeds (n runs); experiment `{name}_<row>_<column>`.", ""]
        lines += ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        points: dict[str, list[tuple[float, float, float]]] = {}
        for row, by_column in cells.items():
            out = []
            for experiment in by_column.values():
                ran = [e for e in (self.exp(m) for m in self.family.get(experiment, [experiment])) if e.run]
                values = [float(e.test[metric]) for e in ran if isinstance(e.test.get(metric), (int, float))]
                out.append(f"{spread(values)} (n={len(values)})" if values else "not run")
                if values:
                    points.setdefault(row, []).append((labels_of(ran[0]), *mean_std(values)))
            lines.append(f"| {row} | " + " | ".join(out) + " |")
        lines.append("")
        if points:
            path = self.out / "figures" / name / "label_efficiency.png"
            atomic_write_bytes(path, figure_png(grid_figure(points, metric)))
            lines += [f"![{metric} against the number of labels](figures/{name}/label_efficiency.png)", ""]
        return lines

    def section(self, spec: dict[str, Any], names: list[str]) -> list[str]:
        if "grid" in spec:
            return self.grid_section(spec)
        lines = [f"## {spec['title']}", ""]
        groups = [[self.exp(n) for n in g] for g in self.groups(match(spec.get("experiments", []), names))]
        exps = [g[0] for g in groups]  # details and figures: the first seed of each
        ran = [e for e in exps if e.run is not None]
        if not ran:
            return lines + [
                f"_not run_ ({', '.join(e.name for e in exps) or ', '.join(spec.get('experiments', []))})",
                "",
            ]
        lines += section_table(groups, spec.get("columns") or {}, spec.get("computed") or [], spec.get("mean", False))
        lines += [""]
        new = [e for e in ran if e.name not in self.detailed]
        self.detailed |= {e.name for e in new}
        side = spec.get("side_by_side") and len(new) > 1
        for e in new:
            lines += self.details(e, show_figures=not side)
        if side:
            lines += self.grid(new)
        return lines

    def tuning(self) -> list[str]:
        studies = sorted((self.runs_dir / "tune").glob("*/best.json"))
        lines = ["## Hyperparameter search (dlmnist tune)", ""]
        if not studies:
            return lines + ["_not run_", ""]
        lines += ["| study | selected on | trials (complete / pruned) | best trial | best val | test | params |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for path in studies:
            b = read_json(path)
            test = ", ".join(f"{k} {fmt(v)}" for k, v in (b.get("test_metrics") or {}).items()) or "—"
            params = ", ".join(f"{k.split('.')[-1]}={fmt(v)}" for k, v in (b.get("params") or {}).items())
            trials = f"{b.get('n_complete', '?')} / {b.get('n_pruned', '?')}"
            row = [b.get("study"), b.get("metric"), trials, b.get("best_trial"), fmt(b.get("value")), test, params]
            lines.append("| " + " | ".join(str(x) for x in row) + " |")
        return lines + [""]

    def write(self, graph_path: Path) -> Path:
        graph = load_graph(graph_path)
        self.family = {m: members for members in graph.families.values() for m in members}
        self.grids = graph.grids
        names = experiment_names(self.runs_dir, list(graph.nodes))
        body: list[str] = []
        for spec in graph.sections:
            body += self.section(spec, names)
        sectioned = {m for spec in graph.sections for n in match(spec.get("experiments", []), names)
                     for m in self.family.get(n, [n])}
        sectioned |= {m for cells in graph.grids.values() for row in cells.values() for n in row.values()
                      for m in self.family.get(n, [n])}
        others = [n for n in names if n not in sectioned]
        if others:
            body += self.section({"title": "Other experiments", "experiments": others}, names)
        body += self.tuning()
        quick = any(e.record.get("quick") for e in self.cache.values())
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        head = [
            "# dlmnist results",
            "",
            f"Written by `dlmnist report --runs_dir {self.runs_dir}` on {now}. Every number and",
        ]
        head += ["figure comes from a run folder (config.yaml, metrics.csv, test_metrics.json, suite.json, figures/);"]
        head += ["nothing is typed by hand. Regenerate with `make report` after `make experiments`.", ""]
        if quick:
            head += ["**Quick runs (`make experiments-quick`): a few batches each, the numbers mean nothing.**", ""]
        toc = [f"- [{line[3:]}](#{anchor(line[3:])})" for line in body if line.startswith("## ")]
        return atomic_write_text(self.out / "README.md", "\n".join(head + toc + [""] + body))


def labels_of(exp: Experiment) -> float:
    """How many labelled training images a run used: its train_subset, else the whole training split."""
    subset = exp.get("data.train_subset")
    return float(subset) if subset else 60000 - round(60000 * float(exp.get("data.val_fraction") or 0.2))


def grid_figure(points: dict[str, list[tuple[float, float, float]]], metric: str):
    fig, ax = subplots(figsize=(6.5, 4.2))
    for row, pts in points.items():
        pts = sorted(pts)
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                    label=row)
    ax.set(xscale="log", xlabel="labelled training images", ylabel=metric, title=f"{metric} by number of labels")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dlmnist report", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs_dir", default="runs", help="folder of run folders (default: %(default)s)")
    p.add_argument("--out", default="reports", help="where README.md and figures/ go (default: %(default)s)")
    p.add_argument("--graph", default="configs/suite.yaml", help="sections and experiments (default: %(default)s)")
    a = p.parse_args(argv)
    if not recipes.exists(a.graph):
        p.error(recipes.unknown(a.graph))
    out = Path(a.out)
    if (out / "figures").is_dir():
        shutil.rmtree(out / "figures")  # figures of runs that are gone must not linger
    path = Report(Path(a.runs_dir), out).write(Path(a.graph))
    print(f"report written to {path}")
    return 0

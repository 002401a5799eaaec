"""The generated blocks of README.md and docs/: ``<!-- ledger:NAME -->`` ... ``<!-- /ledger -->``.

Each NAME is a spec in ``results/tables.yaml``:

- a table (the default): ``rows`` (experiments, or ``{experiment: label}``), ``metrics`` (``{header: key}``),
  ``digits``: one row per experiment with its recipe (the config files of its newest record), its seeds and,
  per metric, mean ± std (min-max) over the newest record of each seed;
- ``kind: grid``: ``grid`` (the suite grid's name), ``rows``, ``columns``, ``metric``: the cell
  ``<grid>_<row>_<column>`` as mean ± std;
- ``kind: value``: ``experiment``, ``metric``: the number alone (mean ± std over its seeds), for prose;
- ``kind: headline``: ``rows``, each ``{experiment, label, metric, name, target}`` (``target``: ``">= 0.99"`` or
  ``"<= 88"``, optional ``digits``, ``note``): one row per experiment with its recipe, seeds, ``name mean ± std
  (min-max)``, the target, the verdict the mean gives, and the mean fit time of a run;
- ``kind: machine``: ``experiments``: where and how their newest records ran (CPU, cores, threads, runs at a
  time, torch and Lightning), one sentence.
- ``kind: suites``: one row per ``dlmnist suite`` invocation in the ledger: its runs, runs at a time, CPU, the
  summed run time and the wall time (its last ``ended`` minus its first ``started``).

A marker in backticks (as in prose about the blocks) is no block. ``render`` rewrites every block from the ledger;
``check`` names every block that differs from what it gives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dlmnist.ledger.record import LedgerError, by_suite, cpu_kind, cpu_kinds, newest, wall_seconds
from dlmnist.utils.stats import mean_std

BLOCK = re.compile(r"(?<!`)(<!-- ledger:([\w.-]+) -->)(.*?)(<!-- /ledger -->)", re.S)
TABLES = Path("results") / "tables.yaml"


def pages(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def load_specs(path: Path) -> dict[str, dict[str, Any]]:
    specs = (yaml.safe_load(Path(path).read_text()) or {}) if Path(path).is_file() else {}
    if not isinstance(specs, dict):
        raise LedgerError(f"{path}: a mapping of block names to specs")
    return specs


def _values(records: list[dict], experiment: str, metric: str) -> list[float]:
    return [r["metrics"][metric] for r in newest(records, experiment).values() if metric in r.get("metrics", {})]


def number(values: list[float], digits: int, spread: bool = False) -> str:
    """``0.9940 ± 0.0004`` (``spread``: `` (0.9935-0.9944)`` after it); one value alone; ``no record``."""
    if not values:
        return "no record"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean, std = mean_std(values)
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    return text + (f" ({min(values):.{digits}f}–{max(values):.{digits}f})" if spread else "")


def _rows(spec: dict) -> list[tuple[str, str]]:
    rows = spec.get("rows") or []
    if isinstance(rows, dict):
        return [(str(e), str(label)) for e, label in rows.items()]
    return [(str(e), f"`{e}`") for e in rows]


def _recipe(records: list[dict], experiment: str) -> str:
    chosen = list(newest(records, experiment).values())
    if not chosen:
        return ""
    files = " ".join(f"`{f}`" for f in chosen[-1].get("configs", []))
    refs = [o.split("=", 1)[0][2:] for o in chosen[-1].get("overrides", []) if "checkpoint" in o]
    return files + "".join(f" (`{r}`: the run it needs)" for r in refs)


def table(spec: dict, records: list[dict]) -> str:
    digits = int(spec.get("digits", 4))
    metrics = spec.get("metrics") or {}
    head = ["experiment", "recipe", "seeds", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for experiment, label in _rows(spec):
        seeds = ", ".join(str(s) for s in newest(records, experiment))
        cells = [number(_values(records, experiment, key), digits, spread=True) for key in metrics.values()]
        lines.append("| " + " | ".join([label, _recipe(records, experiment), seeds or "-", *cells]) + " |")
    return "\n" + "\n".join(lines) + "\n"


def grid(spec: dict, records: list[dict]) -> str:
    digits, metric, name = int(spec.get("digits", 4)), spec["metric"], spec["grid"]
    columns = [str(c) for c in spec["columns"]]
    lines = ["| " + " | ".join([spec.get("corner", "method"), *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for row, label in _rows(spec):
        cells = [number(_values(records, f"{name}_{row}_{c}", metric), digits) for c in columns]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n" + "\n".join(lines) + "\n"


def value(spec: dict, records: list[dict]) -> str:
    return number(_values(records, spec["experiment"], spec["metric"]), int(spec.get("digits", 4)))


def _target(target: str) -> tuple[str, float]:
    op, _, bound = str(target).partition(" ")
    if op not in (">=", "<=") or not bound:
        raise LedgerError(f"{TABLES}: a target is '>= NUMBER' or '<= NUMBER', got {target!r}")
    return op, float(bound)


def _minutes(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    mean = round(sum(seconds) / len(seconds))
    if mean >= 3600:
        return f"{mean // 3600} h {mean % 3600 // 60:02d} min"
    return f"{mean // 60} min {mean % 60:02d} s" if mean >= 60 else f"{mean} s"


def headline(spec: dict, records: list[dict]) -> str:
    head = ["experiment", "recipe", "seeds", "test metric: mean ± std (min–max)", "target", "verdict"]
    head.append("fit time per run")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in spec.get("rows") or []:
        experiment, metric = row["experiment"], row["metric"]
        chosen = newest(records, experiment)
        values = _values(records, experiment, metric)
        op, bound = _target(row["target"])
        verdict = "no record"
        if values:
            mean = sum(values) / len(values)
            verdict = "meets" if (mean >= bound if op == ">=" else mean <= bound) else "misses"
        digits = int(row.get("digits", spec.get("digits", 4)))
        text = f"{row.get('name', metric)} **{number(values, digits, spread=True)}**"
        target = str(row["target"]) + (f" ({row['note']})" if row.get("note") else "")
        fit = _minutes([r["fit_seconds"] for r in chosen.values() if r.get("fit_seconds") is not None])
        seeds = ", ".join(str(s) for s in chosen) or "-"
        cells = [row["label"], _recipe(records, experiment), seeds, text, target, verdict, fit]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n" + "\n".join(lines) + "\n"


def machine(spec: dict, records: list[dict]) -> str:
    chosen = [r for e in spec.get("experiments") or [] for r in newest(records, e).values()]
    if not chosen:
        return "no record"

    def each(key) -> str:
        return " / ".join(sorted({str(key(r)) for r in chosen}))

    cpu, cores = cpu_kinds(chosen), each(lambda r: r["machine"].get("cores"))
    gpu, threads, jobs = each(lambda r: r["machine"].get("gpu") or "none"), each(lambda r: r.get("threads")), each(
        lambda r: r.get("jobs"))
    torch, lightning = each(lambda r: r["versions"].get("torch")), each(lambda r: r["versions"].get("lightning"))
    return (f"{cpu}; {cores} cores, GPU: {gpu}; {threads} thread(s) a run, {jobs} run(s) at a time; "
            f"torch {torch}, Lightning {lightning}")


def suites(spec: dict, records: list[dict]) -> str:
    head = ["suite invocation", "runs", "runs at a time", "CPU", "run time (fit + test, summed)", "wall time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sid, rs in sorted(by_suite(records).items(), key=lambda kv: min(r["started"] for r in kv[1])):
        run_s = sum(float(r.get("fit_seconds") or 0) + float(r.get("test_seconds") or 0) for r in rs)
        cpu = " / ".join(sorted({cpu_kind(r) for r in rs}))
        jobs = " / ".join(sorted({str(r.get("jobs")) for r in rs}))
        cells = [f"`{sid}`", str(len(rs)), jobs, cpu, _minutes([run_s]), _minutes([wall_seconds(rs)])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n" + "\n".join(lines) + "\n"


KINDS = {"table": table, "grid": grid, "value": value, "headline": headline, "machine": machine, "suites": suites}


def render_text(text: str, specs: dict[str, dict], records: list[dict], where: str = "") -> str:
    def one(m: re.Match) -> str:
        name = m.group(2)
        if name not in specs:
            raise LedgerError(f"{where}: block ledger:{name} has no spec in {TABLES}")
        kind = specs[name].get("kind", "table")
        if kind not in KINDS:
            raise LedgerError(f"{TABLES}: {name}: kind must be one of {sorted(KINDS)}, got {kind!r}")
        return m.group(1) + KINDS[kind](specs[name], records) + m.group(4)

    return BLOCK.sub(one, text)


def stale_blocks(root: Path, specs: dict, records: list[dict]) -> list[str]:
    """``page: ledger:NAME`` of every block whose text differs from what the ledger gives."""
    out = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            want = render_text(m.group(0), specs, records, str(page.relative_to(root)))
            if want != m.group(0):
                out.append(f"{page.relative_to(root)}: ledger:{m.group(2)}")
    return out


def render(root: Path, specs: dict, records: list[dict]) -> list[Path]:
    """Rewrite every page whose blocks changed; the pages written."""
    from dlmnist.utils.files import atomic_write_text

    written = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        new = render_text(text, specs, records, str(page.relative_to(root)))
        if new != text:
            atomic_write_text(page, new)
            written.append(page)
    return written

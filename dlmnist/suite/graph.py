"""The experiment graph of ``configs/suite.yaml``: which runs exist, what they need, in which order they run.

An entry ``name: {config: configs/x.yaml, args: {...}, test: best, quick: {...}}`` becomes
``dlmnist fit -c configs/x.yaml --name=name --key=value ...`` then ``dlmnist test`` on the run's
``checkpoints/<test>.ckpt``. A value ``{other}`` inside ``args`` is replaced by the run folder of
experiment ``other`` (``"{cnn}/checkpoints/best.ckpt"``), which makes ``other`` run first.

``seeds: [1, 2, 3]`` in an entry makes one experiment per seed, each with ``--seed_everything=<seed>
--data.seed=<seed>`` (initialisation, dropout, batch order, split and subsets): the first keeps the entry's name,
the others are ``<name>_s<seed>``. A ``{other}`` it refers to whose entry has the same seed becomes that seed's
run (``{ae_conv}`` -> ``{ae_conv_s2}``). The report shows such a family as one row: mean ± standard deviation.

A grid declares a study once: ``grids: {labels: {rows: {method: entry}, columns: {budget: overlay}, seeds: [...]}}``
makes the experiment ``labels_<method>_<budget>`` of every row and column, the row's entry with the column's
config file (an overlay; ``null``: the row's recipe as it is) composed after its own (and the grid's seeds); a
report section with ``grid: labels`` shows it as one table.

An axis varies one key of an entry: ``name: {config: ..., vary: {data.exclude_classes: {d0: [0], d1: [1]}}}``
makes the experiments ``name_d0`` and ``name_d1``, the entry with ``--data.exclude_classes=[0]`` (``[1]``) on top
of its arguments; ``name`` itself is no experiment. The rest of the entry (seeds, quick, test, needs) is every
variant's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlmnist import recipes

REF = re.compile(r"\{([A-Za-z0-9_.-]+)\}")  # {name}: the run folder of experiment `name`
NODE_KEYS = {"config", "args", "needs", "test", "quick", "seeds"}


def seed_name(name: str, seeds: list[int], seed: int) -> str:
    """The experiment of ``seed`` in an entry with ``seeds``: the first keeps the entry's name."""
    return name if seed == seeds[0] else f"{name}_s{seed}"


class GraphError(ValueError):
    pass


def as_args(values: dict[str, Any]) -> list[str]:
    """``{"trainer.max_epochs": 1}`` -> ``["--trainer.max_epochs=1"]`` (lists and dicts as YAML flow)."""
    out = []
    for key, value in values.items():
        if isinstance(value, (list, dict)):
            value = yaml.safe_dump(value, default_flow_style=True).strip()
        elif isinstance(value, bool):
            value = str(value).lower()
        elif value is None:
            value = "null"
        out.append(f"--{key}={value}")
    return out


@dataclass
class Node:
    name: str
    config: list[str]  # one or more -c files, merged in order
    args: dict[str, Any] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)  # explicit dependencies beside the {refs} in args
    test: str | None = "best"  # checkpoint `test` evaluates: best | last | None (no test)
    quick: dict[str, Any] = field(default_factory=dict)  # extra args under --quick only
    experiment: str = ""  # the entry it comes from: its seeds share it (cnn, cnn_s2 -> cnn); "" -> name

    def __post_init__(self) -> None:
        self.experiment = self.experiment or self.name

    @property
    def deps(self) -> list[str]:
        refs = [m for v in self.args.values() for m in REF.findall(str(v))]
        return list(dict.fromkeys([*self.needs, *refs]))

    def fit_args(self, run_dirs: dict[str, Path], quick: dict[str, Any] | None) -> list[str]:
        """Arguments of ``dlmnist fit`` (no runs_dir), with every ``{dep}`` replaced by that run's folder."""

        def resolve(value: Any) -> Any:
            return REF.sub(lambda m: str(run_dirs[m.group(1)]), value) if isinstance(value, str) else value

        values = {key: resolve(value) for key, value in self.args.items()}
        if quick is not None:
            values = {**values, **quick, **self.quick}
        return [x for c in self.config for x in ("-c", c)] + [f"--name={self.name}"] + as_args(values)


@dataclass
class Graph:
    nodes: dict[str, Node]
    quick: dict[str, Any]
    sections: list[dict[str, Any]]
    families: dict[str, list[str]] = field(default_factory=dict)  # entry with seeds -> its experiments, seed order
    grids: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # grid -> row -> column -> experiment

    def order(self, only: list[str] | None = None) -> list[Node]:
        """Nodes in dependency order (depth first, file order otherwise); ``only`` keeps those and what they need."""
        done: dict[str, Node] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                raise GraphError(f"dependency cycle: {' -> '.join([*path, name])}")
            if name in done:
                return
            for dep in self.nodes[name].deps:
                visit(dep, (*path, name))
            done[name] = self.nodes[name]

        for name in only if only else self.nodes:
            if name not in self.nodes:
                raise GraphError(f"no experiment named {name!r} (known: {', '.join(self.nodes)})")
            visit(name, ())
        return list(done.values())


def load_graph(path: str | Path, quick: bool = False) -> Graph:
    """The graph of ``path``; ``quick``: only the first of every entry's seeds (``--quick`` proves that the graph
    connects, the other seeds would prove nothing more)."""
    raw = yaml.safe_load(Path(recipes.path(path)).read_text()) or {}  # configs/suite.yaml: packaged if not here
    if quick:
        for entry in [*(raw.get("experiments") or {}).values(), *(raw.get("grids") or {}).values()]:
            if isinstance(entry, dict) and isinstance(entry.get("seeds"), list):
                entry["seeds"] = entry["seeds"][:1]
    unknown = set(raw) - {"experiments", "grids", "quick", "report"}
    if unknown:
        raise GraphError(f"{path}: unknown top-level keys {sorted(unknown)}")
    nodes = {}
    entries = dict(raw.get("experiments") or {})
    grids = {name: expand_grid(path, name, grid or {}, entries) for name, grid in (raw.get("grids") or {}).items()}
    entries = expand_axes(path, entries)
    for name, entry in entries.items():
        entry = entry or {}
        bad = set(entry) - NODE_KEYS
        if bad or "config" not in entry:
            raise GraphError(f"{path}: experiment {name!r}: needs `config`, allows only {sorted(NODE_KEYS | {'vary'})}")
        test = entry.get("test", "best")
        if test not in ("best", "last", False, None):
            raise GraphError(f"{path}: experiment {name!r}: test must be best, last or false, got {test!r}")
        config = entry["config"] if isinstance(entry["config"], list) else [entry["config"]]
        args, needs, quick = entry.get("args") or {}, entry.get("needs") or [], entry.get("quick") or {}
        seeds = entry.get("seeds")
        if seeds is None:
            nodes[name] = Node(name, config, args, needs, test or None, quick)
            continue
        if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) for x in seeds):
            raise GraphError(f"{path}: experiment {name!r}: seeds must be a list of integers, got {seeds!r}")
        for seed in seeds:

            def own(ref: str, seed: int = seed) -> str:  # {other} -> {other_s<seed>} when other has that seed
                theirs = (entries.get(ref) or {}).get("seeds") or []
                return seed_name(ref, theirs, seed) if seed in theirs else ref

            def seeded_ref(value: Any) -> Any:
                return REF.sub(lambda m: "{" + own(m.group(1)) + "}", value) if isinstance(value, str) else value

            seeded = {k: seeded_ref(v) for k, v in args.items()}
            seeded |= {"seed_everything": seed, "data.seed": seed}
            member = seed_name(name, seeds, seed)
            nodes[member] = Node(member, config, seeded, [own(n) for n in needs], test or None, quick, name)
    for node in nodes.values():
        for dep in node.deps:
            if dep not in nodes:
                raise GraphError(f"{path}: experiment {node.name!r} refers to unknown experiment {dep!r}")
    seeded_entries = {name: e["seeds"] for name, e in entries.items() if (e or {}).get("seeds")}
    families = {name: [seed_name(name, seeds, s) for s in seeds] for name, seeds in seeded_entries.items()}
    graph = Graph(nodes, raw.get("quick") or {}, raw.get("report") or [], families, grids)
    graph.order()  # fail early on a cycle
    return graph


def expand_grid(path: str | Path, name: str, grid: dict[str, Any], entries: dict[str, Any]) -> dict[str, dict]:
    """Add the experiments of grid ``name`` to ``entries``; return ``{row: {column: experiment}}``."""
    bad = set(grid) - {"rows", "columns", "seeds"}
    rows, columns = grid.get("rows") or {}, grid.get("columns") or {}
    if bad or not rows or not columns:
        raise GraphError(f"{path}: grid {name!r} needs rows and columns (and may have seeds), got {sorted(grid)}")
    cells: dict[str, dict[str, str]] = {}
    for row, entry in rows.items():
        for column, extra in columns.items():
            experiment = f"{name}_{row}_{column}"
            if experiment in entries:
                raise GraphError(f"{path}: grid {name!r} makes {experiment!r}, which experiments: already has")
            if extra is not None and not isinstance(extra, str):
                raise GraphError(f"{path}: grid {name!r}: column {column!r}: a config file or null, got {extra!r}")
            entry = entry or {}
            base = entry["config"] if isinstance(entry.get("config"), list) else [entry.get("config")]
            cell = {**entry, "config": [*base, *([extra] if extra else [])]}
            if grid.get("seeds"):
                cell["seeds"] = grid["seeds"]
            entries[experiment] = cell
            cells.setdefault(row, {})[column] = experiment
    return cells


def expand_axes(path: str | Path, entries: dict[str, Any]) -> dict[str, Any]:
    """``entries`` with every entry that has ``vary: {key: {suffix: value}}`` replaced, in place, by one entry
    ``<name>_<suffix>`` per value, the entry's arguments with ``key: value`` on top."""
    out: dict[str, Any] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or "vary" not in entry:
            out[name] = entry
            continue
        entry = dict(entry)
        axis = entry.pop("vary")
        [(key, values)] = axis.items() if isinstance(axis, dict) and len(axis) == 1 else [(None, None)]
        if not isinstance(values, dict) or not values:
            raise GraphError(f"{path}: experiment {name!r}: vary must be {{key: {{suffix: value, ...}}}}, got {axis!r}")
        for suffix, value in values.items():
            variant = f"{name}_{suffix}"
            if variant in entries or variant in out:
                raise GraphError(f"{path}: experiment {name!r} varies into {variant!r}, which already exists")
            out[variant] = {**entry, "args": {**(entry.get("args") or {}), key: value}}
    return out

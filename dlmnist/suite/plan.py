"""``dlmnist suite --plan``: every run with its expected seconds, the total, the critical path through the
``needs`` and the wall time at ``--jobs``; and the progress line the suite prints as runs finish.

A run's expected seconds (fit + test) come from the ledger (a record made on this kind of machine, the CPU model and
native bf16 or not, before a newer one from another kind): the newest record of the same experiment and seed,
else of the same experiment, else of an experiment with the same first config file, else of one whose first config
file is a config that file includes (its ``config:`` key, followed up the chain: ``configs/ae_anomaly.yaml`` costs
what ``configs/ae_conv.yaml`` does, scaled by the ratio of their ``trainer.max_epochs``); a run with none gets the
median of the others (marked ``guess``). Nothing is resolved (an include is read as plain YAML), so the plan answers
in a second.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from dlmnist import recipes
from dlmnist.ledger.record import cpu_kinds, describe, machine, machine_kind, read
from dlmnist.suite.graph import Graph, Node

DEFAULT_GUESS_S = 60.0  # no record at all in the ledger


@dataclass
class Planned:
    node: Node
    seconds: float
    source: str  # "record", "same experiment", "same config", "base config", "guess"
    record: dict | None = None  # the ledger record the seconds come from


def _seconds(r: dict) -> float | None:
    fit, test = r.get("fit_seconds"), r.get("test_seconds")
    return None if fit is None else float(fit) + float(test or 0.0)


def _values(config: str) -> dict | None:
    try:
        values = yaml.safe_load(Path(recipes.path(config)).read_text())
    except (OSError, yaml.YAMLError):
        return None
    return values if isinstance(values, dict) else {}


def _max_epochs(values: dict) -> int | None:
    epochs = values.get("trainer.max_epochs", (values.get("trainer") or {}).get("max_epochs"))
    return epochs if isinstance(epochs, int) and epochs > 0 else None


def max_epochs(configs: list[str], args: dict | None = None) -> int | None:
    """``trainer.max_epochs`` of the files ``configs`` merged in order, then ``args``: the nearest setting wins (a
    file's own key over its includes'); ``None`` where none of them sets it."""
    if args and _max_epochs(args):
        return _max_epochs(args)
    for config in reversed(configs):
        for file in [config, *bases(config)]:
            values = _values(file)
            if values is None:
                break
            if _max_epochs(values):
                return _max_epochs(values)
    return None


def bases(config: str, depth: int = 5) -> list[str]:
    """The config files ``config`` builds on, nearest first: the first entry of its ``config:`` key, that file's, and
    so on (at most ``depth``); a file that cannot be read ends the chain."""
    chain = []
    for _ in range(depth):
        values = _values(config)
        if values is None:
            break
        include = values.get("config")
        include = include[0] if isinstance(include, list) and include else include
        if not isinstance(include, str):
            break
        config = os.path.normpath(os.path.join(os.path.dirname(config), include))
        chain.append(config)
    return chain


def expected(nodes: list[Node], records: list[dict], kind: tuple | None = None) -> list[Planned]:
    """Each run's expected seconds; ``kind`` (:func:`dlmnist.ledger.record.machine_kind`): records made on that kind
    of machine win over newer ones made on another."""
    by_exp_seed, by_exp, by_config = {}, {}, {}
    if kind is not None:  # stable: ledger order within each kind
        records = sorted(records, key=lambda r: machine_kind(r) == kind)
    for r in records:  # ledger order: a later record replaces an earlier one
        if _seconds(r) is None:
            continue
        by_exp_seed[(r.get("experiment"), r.get("seed"))] = r
        by_exp[r.get("experiment")] = r
        if r.get("configs"):
            by_config[Path(r["configs"][0]).name] = r
    out = []
    for node in nodes:
        seed = node.args.get("seed_everything")
        for key, table, source in (
            ((node.experiment, seed), by_exp_seed, "record"),
            (node.experiment, by_exp, "record" if seed is None else "same experiment"),  # None: the config's seed
        ):
            if key in table:
                out.append(Planned(node, _seconds(table[key]), source, table[key]))
                break
        else:
            names = [Path(c).name for c in [node.config[0], *bases(node.config[0])]]
            like = next((name for name in names if name in by_config), None)
            if like is None:
                out.append(Planned(node, -1.0, "guess"))
                continue
            r = by_config[like]
            seconds, ours, theirs = _seconds(r), max_epochs(node.config, node.args), max_epochs(r["configs"])
            if ours and theirs:
                seconds *= ours / theirs
            out.append(Planned(node, seconds, "same config" if like == names[0] else "base config", r))
    known = [p.seconds for p in out if p.source != "guess"]
    guess = statistics.median(known) if known else DEFAULT_GUESS_S
    for p in out:
        if p.source == "guess":
            p.seconds = guess
    return out


def critical_path(planned: list[Planned]) -> tuple[float, list[str]]:
    """The longest chain of runs through their dependencies: (seconds, names)."""
    cost = {p.node.name: p.seconds for p in planned}
    best: dict[str, tuple[float, list[str]]] = {}
    for p in planned:  # dependency order
        before = max((best[d] for d in p.node.deps if d in best), default=(0.0, []), key=lambda t: t[0])
        best[p.node.name] = (before[0] + cost[p.node.name], [*before[1], p.node.name])
    return max(best.values(), default=(0.0, []), key=lambda t: t[0])


def wall_time(planned: list[Planned], jobs: int) -> float:
    """List scheduling in graph order: a run starts when its dependencies have finished and a slot is free."""
    slots = [0.0] * max(jobs, 1)
    finish: dict[str, float] = {}
    for p in planned:
        ready = max((finish[d] for d in p.node.deps if d in finish), default=0.0)
        i = min(range(len(slots)), key=lambda k: max(slots[k], ready))
        start = max(slots[i], ready)
        finish[p.node.name] = slots[i] = start + p.seconds
    return max(finish.values(), default=0.0)


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def this_kind() -> tuple:
    """The kind of machine this process runs on, as :func:`dlmnist.ledger.record.machine_kind` gives it."""
    return machine_kind({"machine": machine()})


def print_plan(graph: Graph, only: list[str] | None, ledger: Path, jobs: int) -> None:
    planned = expected(graph.order(only), read(ledger), this_kind())
    width = max((len(p.node.name) for p in planned), default=10)
    for p in planned:
        print(f"{p.node.name:<{width}}  {hms(p.seconds):>8}  {p.source}")
    total = sum(p.seconds for p in planned)
    path_s, path = critical_path(planned)
    guesses = sum(p.source == "guess" for p in planned)
    print(f"{len(planned)} runs ({guesses} without a record in {ledger}: guessed as the median); "
          f"total run time {hms(total)}")
    print(f"critical path {hms(path_s)}: {' -> '.join(path)}")
    print(f"wall time at --jobs {jobs}: {hms(wall_time(planned, jobs))} (each run taking its recorded seconds)")
    print(f"seconds measured on: {machines(planned)} (a CPU of another kind takes other times; records from "
          f"this one, {describe(machine())}, come first)")


def machines(planned: list[Planned]) -> str:
    """``AMD EPYC, native bf16: 140 runs; AMD EPYC, no native bf16: 66 runs``: where the plan's seconds come from."""
    return cpu_kinds([p.record for p in planned if p.record and p.record.get("machine")]) or "no record"


class Progress:
    """``[suite] 12 done, 1 running, 40 left; about 0:42:10 left`` from the plan's seconds of what is left."""

    def __init__(self, planned: list[Planned], jobs: int = 1) -> None:
        self.seconds = {p.node.name: p.seconds for p in planned}
        self.left = [p.node.name for p in planned]
        self.done: list[str] = []
        self.jobs = max(jobs, 1)

    def finished(self, name: str, running: int = 0) -> str:
        if name in self.left:
            self.left.remove(name)
            self.done.append(name)
        rest = sum(self.seconds[n] for n in self.left) / self.jobs
        waiting = len(self.left) - running
        return f"[suite] {len(self.done)} done, {running} running, {waiting} left; about {hms(rest)} left"

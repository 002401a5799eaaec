"""The suite's cost: `dlmnist suite --plan`'s wall time of every run of configs/suite.yaml at two jobs, from the
ledger (records from this kind of CPU first), and the measured wall time of the newest suite invocation that ran
every run of it (null where none did).

A suite invocation is the ``suite`` id its records share; its wall time is its last ``ended`` minus its first
``started``. Its runs cover the suite when every run of the graph has a record with that id.
"""

from __future__ import annotations

from benchmarks.shared import ROOT
from dlmnist.ledger.record import by_suite, read, wall_seconds
from dlmnist.suite.graph import load_graph
from dlmnist.suite.plan import expected, this_kind, wall_time

JOBS = 2


def suite_time(jobs: int = JOBS) -> dict:
    records = read(ROOT / "results" / "ledger.jsonl")
    nodes = load_graph(ROOT / "configs" / "suite.yaml").order()
    planned = expected(nodes, records, this_kind())  # records from this kind of CPU first
    out = {
        "suite_runs": len(nodes),
        "suite_runs_with_a_record": sum(p.source != "guess" for p in planned),
        "suite_planned_wall_s": round(wall_time(planned, jobs), 1),
        "suite_measured_wall_s": None,
    }
    wanted = {(n.experiment, n.args.get("seed_everything")) for n in nodes}  # seed None: the config's own
    for rs in sorted(by_suite(records).values(), key=lambda rs: max(r["ended"] for r in rs), reverse=True):
        done = {(r["experiment"], r["seed"]) for r in rs} | {(r["experiment"], None) for r in rs}
        if wanted <= done:
            out["suite_measured_wall_s"] = round(wall_seconds(rs))
            break
    return out

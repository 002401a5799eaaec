"""``dlmnist ledger``: add a run by hand, render the docs' blocks, check them, compare runs with their records.

    dlmnist ledger add RUN [RUN ...]      append the record of each tested run folder
    dlmnist ledger render                 rewrite every <!-- ledger:NAME --> block of README.md and docs/
    dlmnist ledger check                  exit 1, naming the blocks that differ from the ledger
    dlmnist ledger diff [RUN ...]         each run's test metrics beside the newest record of its experiment
                                          and seed from the same kind of machine (else from another, said so),
                                          and that seed's records from other kinds (default: the newest run of
                                          every experiment in runs/)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlmnist import runs
from dlmnist.ledger import blocks, record


def _diff(args: argparse.Namespace, ledger: list[dict]) -> int:
    folders = [Path(r) for r in args.runs]
    if not folders:
        base = Path(args.runs_dir)
        folders = [v for d in sorted(base.glob("*")) if d.is_dir() for v in runs.versions(d)[-1:]]
    if not folders:
        print(f"dlmnist ledger diff: no run folder given or found in {args.runs_dir}", file=sys.stderr)
        return 1
    for run in folders:
        try:
            now = record.build(run)
        except record.LedgerError as e:
            print(f"{run}: {e}", file=sys.stderr)
            continue
        others = [r for r in ledger if r.get("run") != now["run"]]  # not the run's own record
        found = record.references(others, now)
        if not found:
            print(f"{now['experiment']} seed {now['seed']} ({run}): no record in the ledger")
            continue
        recorded, *rest = found
        same = "same config" if recorded["config_sha256"] == now["config_sha256"] else "CONFIG DIFFERS"
        where = record.describe(recorded["machine"])
        if record.machine_kind(recorded) != record.machine_kind(now):
            where = (f"another kind of machine: {where}; this run: {record.describe(now['machine'])}; the float "
                     "kernels differ between kinds of CPU, and so may the last digits")
        elif now.get("threads") is not None and recorded.get("threads") != now["threads"]:
            where += (f"; {recorded.get('threads')} thread(s), this run {now['threads']}: sums split over threads "
                      "add up in another order, and the last digits may differ")
        print(f"{now['experiment']} seed {now['seed']} ({run}), {same}, record of {recorded['ended']} ({where}):")
        for key, v in sorted(now["metrics"].items()):
            if key in recorded["metrics"]:
                was = recorded["metrics"][key]
                print(f"  {key:<28} run {v:.6f}  record {was:.6f}  difference {v - was:+.6f}")
        for r in rest:  # the seed's newest record from each other kind of machine (or thread count)
            values = "  ".join(f"{k} {r['metrics'][k]:.6f}" for k in sorted(now["metrics"]) if k in r["metrics"])
            print(f"  also recorded on {record.describe(r['machine'])} ({r.get('threads')} thread(s)): {values}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="dlmnist ledger", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--ledger", default=str(record.LEDGER), help="the ledger (default: %(default)s)")
    p.add_argument("--tables", default=str(blocks.TABLES), help="the block specs (default: %(default)s)")
    p.add_argument("--root", default=".", help="the folder of README.md and docs/ (default: %(default)s)")
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="append the record of each tested run folder")
    add.add_argument("runs", nargs="+", metavar="RUN")
    add.add_argument("--experiment", default=None, help="default: the suite's, else the folder's")
    sub.add_parser("render", help="rewrite the generated blocks of README.md and docs/")
    sub.add_parser("check", help="exit 1 when a generated block differs from the ledger")
    diff = sub.add_parser("diff", help="runs beside their ledger records")
    diff.add_argument("runs", nargs="*", metavar="RUN")
    diff.add_argument("--runs_dir", default="runs", help="without RUN: the newest run of each experiment here")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if a.action == "add":
            built = [record.build(Path(r), a.experiment) for r in a.runs]  # all or nothing
            for r in built:
                record.append(r, Path(a.ledger))
                print(f"ledger: {r['experiment']} seed {r['seed']}: {r['metrics']}")
            return 0
        ledger = record.read(Path(a.ledger))
        specs = blocks.load_specs(Path(a.tables))
        root = Path(a.root)
        if a.action == "render":
            for page in blocks.render(root, specs, ledger):
                print(f"ledger: wrote {page}")
            return 0
        if a.action == "check":
            stale = blocks.stale_blocks(root, specs, ledger)
            for name in stale:
                print(f"ledger check: {name} differs from the ledger (dlmnist ledger render)", file=sys.stderr)
            if not stale:
                print(f"ledger check: every block agrees with {a.ledger} ({len(ledger)} records)")
            return 1 if stale else 0
        return _diff(a, ledger)
    except record.LedgerError as e:
        print(f"dlmnist ledger: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

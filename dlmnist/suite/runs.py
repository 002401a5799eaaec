"""Reading run folders (``runs/<name>/version_<n>/``): which runs exist, which the suite finished, their files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SUITE_FILE = "suite.json"  # written by `dlmnist suite` into each run it made: key, commands, wall times


def versions(base: Path) -> list[Path]:
    """``base/version_<n>`` folders, oldest first."""
    found = [p for p in base.glob("version_*") if p.is_dir() and re.fullmatch(r"version_\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def suite_record(run: Path) -> dict[str, Any]:
    return read_json(run / SUITE_FILE)


def find_suite_run(base: Path, key: str) -> Path | None:
    """The newest run of ``base`` the suite made with this key (finished or at least fitted)."""
    for run in reversed(versions(base)):
        if suite_record(run).get("key") == key:
            return run
    return None


def pick_run(base: Path) -> Path | None:
    """The run a report shows: the newest the suite finished, else the newest tested, else the newest fitted."""
    runs = list(reversed(versions(base)))
    for good in (
        lambda r: suite_record(r).get("status") == "done",
        lambda r: (r / "test_metrics.json").is_file(),
        lambda r: (r / "metrics.csv").is_file(),
    ):
        for run in runs:
            if good(run):
                return run
    return None

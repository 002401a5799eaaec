"""What every part of `make bench` shares: the paths, the log line, a config's data block, `dlmnist fit` in this
process, and the 90th percentile of step times."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "configs" / "cnn.yaml"
FAST = ROOT / "configs" / "cnn_fast.yaml"
DATA = ROOT / "data"
DL = [str(ROOT / ".venv" / "bin" / "dlmnist")]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def data_args(config: Path = CNN) -> dict:
    """The data block of ``config`` (one file, no overlays), without augmentation."""
    import yaml

    data = yaml.safe_load(config.read_text()).get("data", {}) or {}
    return {k: v for k, v in data.items() if k != "augment"}


def fit_cnn(runs: Path, *extra: str, config: Path = CNN) -> None:
    """`dlmnist fit -c configs/cnn.yaml` (or ``config``) in this process, into ``runs``, with extra arguments."""
    from dlmnist.cli import main

    main(["fit", "-c", str(config), f"--data.data_dir={DATA}", f"--runs_dir={runs}", *extra])


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]

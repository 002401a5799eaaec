"""Where a run's files go, and writing them without leaving half-written files behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import lightning as L

Metrics = dict[str, list[tuple[int, int, float]]]  # metrics.csv: column -> [(epoch, step, value), ...]


def run_dir(trainer: L.Trainer) -> Path:
    """The run folder (``runs/<name>/version_<n>``): the CLI sets it as the trainer's default_root_dir."""
    return Path(trainer.default_root_dir)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())

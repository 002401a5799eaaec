"""A data folder that runs out of space while the IDX files are written: a clear error, no half-written file."""

from __future__ import annotations

import contextlib
import gzip
import resource
import signal

import pytest

from dlmnist.data import DataError, ensure_files
from dlmnist.data.sources import TRAIN_IMAGES

from .conftest import write_fake_dataset


@contextlib.contextmanager
def file_size_limit():
    """Writes past 100 kB fail with EFBIG, as on a full disk (a real OS limit, restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write() instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def test_a_full_disk_is_a_clear_error_and_leaves_no_partial_file(tmp_path):
    src = write_fake_dataset(tmp_path / "src")  # train images: 470 kB once decompressed
    dest = tmp_path / "data" / "fashion_mnist"
    dest.mkdir(parents=True)
    for f in src.iterdir():
        (dest / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    with file_size_limit(), pytest.raises(DataError, match=r"cannot write the fashion_mnist files into .*free space"):
        ensure_files(tmp_path / "data", "fashion_mnist", download=False)
    assert not (dest / TRAIN_IMAGES).exists()
    assert not [p.name for p in dest.iterdir() if not p.name.endswith(".gz")]  # no .partial, no half file

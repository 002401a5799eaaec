"""Speed options selectable from a config: channels-last is tested in test_nn.py, torch.compile here; and the
per-step cost of Lightning's NVML check on a machine without an NVIDIA driver."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from dlmnist import compat
from dlmnist.callbacks import Compile
from dlmnist.compat import NVML_CHECK, nvidia_driver_present

from .conftest import CONFIGS, ROOT, run_cli


def test_compile_callback_compiles_in_place_and_checkpoints_keep_their_names(fake_data, tmp_path):
    args = ["-c", str(CONFIGS / "cnn.yaml"), f"--data.data_dir={fake_data}", "--data.dataset=fashion_mnist"]
    compiled = ["--trainer.callbacks+=dlmnist.callbacks.Compile", "--trainer.callbacks.backend=eager"]
    run_cli("fit", *args, *compiled, f"--runs_dir={tmp_path / 'c'}", "--trainer.max_steps=2")
    run_cli("fit", *args, f"--runs_dir={tmp_path / 'e'}", "--trainer.max_steps=2")
    ckpt = [
        torch.load(d / "cnn/version_0/checkpoints/last.ckpt", weights_only=False)
        for d in (tmp_path / "c", tmp_path / "e")
    ]
    assert list(ckpt[0]["state_dict"]) == list(ckpt[1]["state_dict"])  # no "_orig_mod." names
    assert ckpt[0]["global_step"] == 2


def test_compile_callback_compiles_the_modules_forward_once():
    from dlmnist.models import Classifier
    from dlmnist.nn import ConvEncoder

    model = Classifier(ConvEncoder(channels=[4], latent_dim=8))
    callback = Compile(backend="eager")
    callback.setup(None, model, "fit")
    first = model._compiled_call_impl
    assert first is not None
    callback.setup(None, model, "test")
    assert model._compiled_call_impl is first
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_compile_callback_rejects_an_unknown_backend():
    with pytest.raises(ValueError, match="unknown torch.compile backend 'inductr'; choose one of .*inductor"):
        Compile(backend="inductr")


# run in a fresh process: the NVIDIA driver libraries load (driver) or not (no driver) whatever this machine has
FAKE_DRIVER = """
import ctypes
real = ctypes.CDLL
def fake(name, *args, **kwargs):
    if str(name).startswith(("libnvidia-ml", "libcuda")):
        if not DRIVER:
            raise OSError(f"{name}: cannot open shared object file")
        return object()
    return real(name, *args, **kwargs)
ctypes.CDLL = fake
"""


@pytest.mark.slow  # starts fresh Python processes
@pytest.mark.parametrize("driver", [False, True], ids=["no_driver", "driver"])
def test_lightnings_nvml_check_goes_only_where_there_is_no_nvidia_driver(driver):
    """A fresh process: Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 at import (torch then retries loading NVML at
    every optimizer step on a machine without it); importing dlmnist's models drops it only on Linux without one."""
    code = (
        f"import os, lightning; before = os.environ.get({NVML_CHECK!r})\nDRIVER = {driver}\n{FAKE_DRIVER}\n"
        f"import dlmnist.models; print(before, os.environ.get({NVML_CHECK!r}))"
    )
    env = {k: v for k, v in os.environ.items() if k != NVML_CHECK}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    before, after = out.stdout.split()
    assert before == "1"  # Lightning's doing
    assert after == ("None" if sys.platform.startswith("linux") and not driver else "1")


@pytest.mark.parametrize(
    "loadable, present, tried",
    [
        ({"libnvidia-ml.so.1"}, True, ["libnvidia-ml.so.1"]),
        ({"libcuda.so.1"}, True, ["libnvidia-ml.so.1", "libcuda.so.1"]),
        (set(), False, ["libnvidia-ml.so.1", "libcuda.so.1"]),
    ],
    ids=["nvml", "cuda_only", "neither"],
)
def test_the_driver_check_loads_the_nvml_or_the_cuda_driver_library(loadable, present, tried, monkeypatch):
    calls = []

    def cdll(name):
        calls.append(name)
        if name not in loadable:
            raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(compat.ctypes, "CDLL", cdll)
    assert nvidia_driver_present() is present and calls == tried


def test_the_nvml_check_stays_when_a_driver_is_there(monkeypatch):
    monkeypatch.setenv(NVML_CHECK, "1")
    monkeypatch.setattr(compat, "nvidia_driver_present", lambda: True)
    compat.drop_nvml_check_without_driver()
    assert os.environ[NVML_CHECK] == "1"


@pytest.mark.parametrize("platform, dropped", [("linux", True), ("darwin", False), ("win32", False)])
def test_the_nvml_check_goes_without_a_driver_on_linux_only(platform, dropped, monkeypatch):
    monkeypatch.setenv(NVML_CHECK, "1")
    monkeypatch.setattr(compat, "nvidia_driver_present", lambda: False)
    monkeypatch.setattr(compat.sys, "platform", platform)
    compat.drop_nvml_check_without_driver()
    assert os.environ.get(NVML_CHECK) == (None if dropped else "1")

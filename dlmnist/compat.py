"""The one module that reads private attributes of Lightning, jsonargparse, submitit and torch.

pyproject.toml bounds these libraries to the versions this was tested with, and ``tests/test_compat.py`` calls
every function below against the installed versions: an attribute that disappears upstream fails a test
instead of silently switching a check off. No function here falls back to a default when an attribute is
missing; each reads it directly.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any, Optional

from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


# ---- performance workarounds -------------------------------------------------------------------------------
def nvidia_driver_present() -> bool:
    """Whether this Linux machine has an NVIDIA driver (its NVML or CUDA driver library loads; neither starts CUDA)."""
    for name in ("libnvidia-ml.so.1", "libcuda.so.1"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


def drop_nvml_check_without_driver() -> None:
    """Undo Lightning's ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on a Linux machine with no NVIDIA driver.

    Lightning sets it at import so that ``torch.cuda.is_available()`` asks NVML instead of starting CUDA in a
    process that may fork. Without a driver torch then tries to load NVML again at every call: 47 us a call
    against 1 us without the variable, and AdamW calls it every step (1.53 against 1.24 ms an AdamW step over
    configs/cnn.yaml's parameters, 300 steps, three alternating repeats on a 2-core x86_64 VM, about 1% of a
    step). With no driver there is no CUDA to keep out of a fork, so the variable goes; with one, or on
    another system, Lightning's setting stays.
    """
    if sys.platform.startswith("linux") and os.environ.get(NVML_CHECK) == "1" and not nvidia_driver_present():
        del os.environ[NVML_CHECK]


drop_nvml_check_without_driver()  # at import: the model base imports this module, so every training runs after it


# ---- Lightning ------------------------------------------------------------------------------------------
def given_hyperparameters() -> Optional[dict]:
    """The init arguments LightningCLI is instantiating a model with (``None`` outside the CLI)."""
    return _given_hyperparameters.get()


CLI_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"  # in lightning.pytorch.core.saving's allow-list


def mark_cli_built(hparams: dict, cls: type) -> None:
    """Make hyper-parameters saved in Python load as LightningCLI's do: ``load_from_checkpoint`` then builds the
    model through jsonargparse, so sub-modules saved as ``class_path``/``init_args`` dicts are rebuilt."""
    hparams["_instantiator"] = CLI_INSTANTIATOR
    hparams["_class_path"] = f"{cls.__module__}.{cls.__qualname__}"


def hparams_dicts(module) -> tuple[dict, dict]:
    """A LightningModule's saved hyper-parameters and their initial copy (both written to checkpoints)."""
    return module._hparams, module._hparams_initial


def lightning_export_mode():
    """The context Lightning's own ``to_torchscript``/``to_onnx`` trace in: a LightningModule with no Trainer
    answers ``module.trainer`` with ``None`` instead of raising (tracing walks every attribute)."""
    from lightning.pytorch.core.module import _jit_is_scripting

    return _jit_is_scripting()


def attached_trainer(module) -> Any:
    """The Trainer a LightningModule is attached to, or ``None`` (``module.trainer`` raises when there is none)."""
    return module._trainer


def combined_loader(trainer) -> Any:
    """The fit loop's combined training loader (``None`` before fit has set it up)."""
    return trainer.fit_loop._combined_loader


def apply_loader_states(trainer) -> None:
    """Hand a restored checkpoint's loader state to the training loader now (a no-op once applied).

    Lightning applies it when it sets the loader up after restoring; a model that reads
    ``trainer.estimated_stepping_batches`` in ``configure_optimizers`` (one-cycle) sets it up before.
    """
    trainer.fit_loop._load_combined_loader_states()


def uncount_stepped_batch(checkpoint: dict) -> None:
    """One logging step fewer in a checkpoint: Lightning adds one on resume, right for a save after a step only."""
    checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1


def logs_this_step(trainer) -> bool:
    """Whether the loggers write step values after the current training step (every ``log_every_n_steps``)."""
    return trainer._logger_connector.should_update_logs


def step_logged_values(trainer) -> dict[str, Any]:
    """``{name: tensor}`` of what the current training step logged with ``on_step`` (Lightning's result
    collection; the forward cache holds the newest value)."""
    found = {}
    for metric in trainer.fit_loop.epoch_loop._results.values():
        cache = metric._forward_cache
        if metric.meta.fx == "training_step" and cache is not None:
            found[metric.meta.name] = cache
    return found


def wandb_run(logger) -> Any:
    """The W&B run a WandbLogger holds, without starting one (``None`` when it has none)."""
    return logger._experiment


def forget_wandb_run(logger) -> None:
    logger._experiment = None


def train_progress_bar(bar_callback) -> Any:
    """The training bar of a TQDMProgressBar callback (``None`` before the fit has made it)."""
    return bar_callback._train_progress_bar


def is_compiled(module) -> bool:
    """Whether ``module.compile()`` has been called on this module (torch keeps the compiled call privately)."""
    return module._compiled_call_impl is not None


# ---- LightningCLI and jsonargparse -----------------------------------------------------------------------
def subcommand_parsers(cli) -> dict:
    """``{subcommand: parser}`` of a LightningCLI."""
    return cli._subcommand_parsers


def option_names(parser) -> list[str]:
    """Every option string a parser knows (``--model.lr``, ...), for "did you mean" hints."""
    return list(parser._option_string_actions)


# ---- submitit and torch -----------------------------------------------------------------------------------
def slurm_parameters() -> set[str]:
    """The sbatch parameters submitit's SlurmExecutor accepts."""
    import submitit

    return set(submitit.SlurmExecutor._valid_parameters())


def onednn_bf16_supported() -> bool:
    """oneDNN's own check for native bfloat16 on this CPU."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bfloat16 arithmetic


def cpu_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), so ``precision: bf16-mixed`` pays off.

    Without them bf16 is emulated and slower than float32 (the CLI then trains in float32).
    ``DLMNIST_CPU_BF16=0`` or ``=1`` overrides the detection (to check the fp32 fallback on a CPU that has bf16).
    Read from ``/proc/cpuinfo`` on Linux; elsewhere from oneDNN's own check.
    """
    forced = os.environ.get("DLMNIST_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = {f for line in cpuinfo.read_text().splitlines() if line.startswith("flags") for f in line.split()}
        return any(flag in flags for flag in BF16_FLAGS)
    return onednn_bf16_supported()


class LightningCLIHooks:
    """Mixin for a LightningCLI subclass: the two private methods it overrides, and nothing else.

    - After LightningCLI puts a checkpoint's saved model arguments over the parsed config, a model key typed on the
      command line (``test --ckpt_path X --model.nll_samples=5000``) is put back: the user's word wins.
    - Around each subcommand, :meth:`command_done` or :meth:`command_failed` (then the error goes on).
    """

    def typed_model_keys(self) -> list[str]:
        raise NotImplementedError

    def command_done(self, subcommand: str) -> None:
        raise NotImplementedError

    def command_failed(self, subcommand: str) -> None:
        raise NotImplementedError

    def _parse_ckpt_path(self) -> None:
        sub = self.config.get("subcommand")
        keys = self.typed_model_keys()
        before = self.config[sub].clone() if sub and keys else None
        super()._parse_ckpt_path()
        if before is None:
            return
        after = self.config[sub]
        for key in keys:
            for path in (key, key.replace("model.", "model.init_args.", 1)):
                if path in before and path in after:
                    after[path] = before[path]
                    break

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            self.command_failed(subcommand)
            raise
        self.command_done(subcommand)

"""Speed settings that leave the model code alone."""

from __future__ import annotations

from typing import Literal, Optional

import lightning as L
import torch

from dlmnist.compat import is_compiled

CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]


class Compile(L.Callback):
    """Compile the model's forward pass with ``torch.compile``, in place.

    ``nn.Module.compile`` keeps the module and its parameter names, so checkpoints, the state dict and
    ``load_from_checkpoint`` are the same as without it. Select it from a config or the command line:
    ``--trainer.callbacks+=dlmnist.callbacks.Compile`` (and ``--trainer.callbacks.mode=max-autotune`` etc.).

    No config turns it on: on a 2-core CPU a compiled `configs/cnn.yaml` training step is about 1.5x slower
    than the eager one, and compiling costs some 20 s. On a GPU it may pay off on long runs.

    Args:
        backend: a ``torch.compiler.list_backends()`` name; ``eager`` only traces (cheap, for checks).
        mode, fullgraph, dynamic: passed to ``torch.compile``.
    """

    def __init__(
        self,
        backend: str = "inductor",
        mode: Optional[CompileMode] = None,
        fullgraph: bool = False,
        dynamic: Optional[bool] = None,
    ) -> None:
        if backend not in torch.compiler.list_backends(exclude_tags=()):
            usual = ", ".join(torch.compiler.list_backends())  # without the debug and experimental ones
            raise ValueError(f"unknown torch.compile backend {backend!r}; choose one of {usual} (or eager, for checks)")
        self.options = {"backend": backend, "mode": mode, "fullgraph": fullgraph, "dynamic": dynamic}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not is_compiled(pl_module):  # once, also when fit is followed by test
            pl_module.compile(**self.options)

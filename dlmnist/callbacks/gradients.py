"""Per-layer gradient norms and activation statistics during training: is it vanishing (or exploding) gradients?

``--trainer.callbacks+=dlmnist.callbacks.GradientStats`` adds it to any model's run; without it nothing is
installed (no hooks, no work). Every ``every_n_steps``-th training batch it logs to the run's loggers (so to
``metrics.csv``, and W&B when on):

- ``grad_norm/<layer>``: the L2 norm of the gradient of that layer's own parameters (weight and bias together),
  taken just before the optimizer step (after AMP unscaling), for every layer with parameters (Linear, Conv,
  batch norm, ...);
- ``activation/<module>/mean``, ``/std``, ``/zero``: mean, standard deviation and fraction of exact zeros of the
  output of every activation module (ReLU, sigmoid, tanh, ...), from forward hooks armed only on those batches.

At the end of ``fit`` it draws ``train/grad_norm_by_layer``: the gradient norm of each layer over training (left)
and against depth at the first and last recorded step (right), through ``dlmnist.utils.figures.log_figure``.
"""

from __future__ import annotations

from typing import Optional

import lightning as L
import torch
import torch.nn as nn

from dlmnist.utils.checks import PositiveInt, check
from dlmnist.utils.figures import colormap, log_figure, subplots

ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SiLU)


class GradientStats(L.Callback):
    """Log per-layer gradient norms and activation statistics every ``every_n_steps`` training batches.

    With gradient accumulation, gradient norms are recorded when a due batch is also a stepping batch.

    Args:
        every_n_steps: record every this many training batches (``None``: the trainer's ``log_every_n_steps``).
        activations: also record activation mean / std / fraction of zeros (forward hooks on those batches).
        figure: draw the gradient-norm-by-layer figure at the end of ``fit``.
    """

    def __init__(
        self, every_n_steps: Optional[PositiveInt] = None, activations: bool = True, figure: bool = True
    ) -> None:
        check(PositiveInt, every_n_steps=every_n_steps)
        self.every_n_steps, self.activations, self.figure = every_n_steps, activations, figure
        self.history: dict[str, list[tuple[int, float]]] = {}  # layer -> [(step, gradient norm)]
        self._layers: list[tuple[str, nn.Module]] = []
        self._handles: list = []
        self._due = False
        self._batches = 0
        self._pending: dict[str, torch.Tensor] = {}  # metric -> 0-dim tensor, logged at the batch end

    # ---- set-up and tear-down -----------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._layers = [(n, m) for n, m in pl_module.named_modules() if any(True for _ in m.parameters(False))]
        self.history, self._batches = {}, 0
        if self.activations:
            for name, module in pl_module.named_modules():
                if isinstance(module, ACTIVATIONS):
                    self._handles.append(module.register_forward_hook(self._activation_hook(name)))

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._pending, self._due = [], {}, False

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._remove_hooks()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._remove_hooks()
        if self.figure and self.history and trainer.is_global_zero:
            log_figure(trainer, "train/grad_norm_by_layer", gradient_figure(self.history, [n for n, _ in self._layers]))

    # ---- recording ----------------------------------------------------------------------------
    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        every = self.every_n_steps or trainer.log_every_n_steps or 1
        self._due = self._batches % every == 0
        self._batches += 1

    def _activation_hook(self, name: str):
        def hook(module, args, output) -> None:
            if not (self._due and module.training and isinstance(output, torch.Tensor)):
                return
            out = output.detach().float()
            self._pending[f"activation/{name}/mean"] = out.mean()
            self._pending[f"activation/{name}/std"] = out.std() if out.numel() > 1 else out.new_zeros(())
            self._pending[f"activation/{name}/zero"] = (out == 0).float().mean()

        return hook

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module, optimizer) -> None:
        if not self._due:
            return
        # with several optimizers (a GAN), each step reports the layers it updates
        stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for name, module in self._layers:
            grads = [p.grad for p in module.parameters(False) if p.grad is not None and id(p) in stepped]
            if grads:
                norms = torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads])
                self._pending[f"grad_norm/{name or 'model'}"] = torch.linalg.vector_norm(norms)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not self._pending:
            return
        keys, values = list(self._pending), torch.stack(list(self._pending.values())).tolist()  # one device sync
        self._pending = {}
        metrics = dict(zip(keys, values))
        step = trainer.global_step
        for key, value in metrics.items():
            if key.startswith("grad_norm/"):
                self.history.setdefault(key[len("grad_norm/") :], []).append((step, value))
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)


def gradient_figure(history: dict[str, list[tuple[int, float]]], order: list[str]):
    """Left: gradient norm of every layer over training steps (log scale); right: norm against layer depth at
    the first and the last recorded step (the vanishing-gradient picture: small norms near the input)."""
    names = [n for n in [*(o or "model" for o in order), *history] if n in history]
    names = list(dict.fromkeys(names))  # depth order, once each
    fig, (ax, ax2) = subplots(1, 2, figsize=(12, 4.5))
    cmap = colormap("viridis")
    for i, name in enumerate(names):
        steps, norms = zip(*history[name])
        ax.plot(steps, norms, color=cmap(i / max(len(names) - 1, 1)), label=name, lw=1.2)
    ax.set(xlabel="training step", ylabel="gradient L2 norm", yscale="log", title="gradient norm by layer")
    if len(names) <= 12:
        ax.legend(fontsize=7)
    for pick, label in ((0, "first recorded step"), (-1, "last recorded step")):
        ax2.plot(range(len(names)), [history[n][pick][1] for n in names], "o-", label=label)
    ax2.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax2.set(ylabel="gradient L2 norm", yscale="log", title="by depth (input left, output right)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig

"""The phase schedule of a stacked autoencoder run: pretrain layer 1..L, head, finetune, by epoch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    kind: str  # "pretrain", "head" or "finetune"
    layer: int  # the layer being pretrained (1-based); 0 for head and finetune
    first_epoch: int
    epochs: int
    n_layers: int

    @property
    def label(self) -> str:
        """What the progress bar and the logs show, e.g. ``pretrain layer 2/3``."""
        return f"pretrain layer {self.layer}/{self.n_layers}" if self.kind == "pretrain" else self.kind

    @property
    def last_epoch(self) -> int:
        return self.first_epoch + self.epochs - 1


def build_schedule(
    n_layers: int, pretrain: bool, pretrain_epochs: list[int], head_epochs: int, finetune_epochs: int
) -> list[Phase]:
    """Phases in order, each with its epochs. Without ``pretrain`` the whole budget goes to ``finetune``
    (the same architecture from random initialisation with the same total epochs). Phases of 0 epochs are left out.
    """
    total = sum(pretrain_epochs) + head_epochs + finetune_epochs
    if not pretrain:
        return [Phase("finetune", 0, 0, total, n_layers)]
    parts = [("pretrain", k + 1, e) for k, e in enumerate(pretrain_epochs)]
    parts += [("head", 0, head_epochs), ("finetune", 0, finetune_epochs)]
    phases, first = [], 0
    for kind, layer, epochs in parts:
        if epochs > 0:
            phases.append(Phase(kind, layer, first, epochs, n_layers))
            first += epochs
    return phases


def phase_index(phases: list[Phase], epoch: int) -> int:
    """Index of the phase that ``epoch`` (0-based) belongs to; epochs past the end stay in the last phase."""
    for i, phase in enumerate(phases):
        if epoch <= phase.last_epoch:
            return i
    return len(phases) - 1


def describe(phases: list[Phase]) -> str:
    """``pretrain layer 1/3: epochs 0-1, ..., finetune: epochs 8-17`` for messages."""
    return ", ".join(f"{p.label}: epochs {p.first_epoch}-{p.last_epoch}" for p in phases)

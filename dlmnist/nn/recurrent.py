"""Recurrent blocks: an image read row by row (``RowRNN``), with optional truncated backpropagation through time.

Lightning 2.x has no ``truncated_bptt_steps``; here the truncation is in the forward pass: the sequence of rows is
run in chunks of ``tbptt_steps`` rows and the hidden state is detached between chunks, so the loss's gradient
reaches only the last chunk's rows (and the weights only through them). The forward values are unchanged.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn as nn

from dlmnist.utils.checks import Fraction, PositiveInt, check
from dlmnist.utils.init_config import RemembersInit

Cell = Literal["rnn", "gru", "lstm"]
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def detach_state(state):
    """The hidden state cut from the graph: a tensor, or the LSTM's ``(h, c)``."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class RowRNN(RemembersInit, nn.Module):
    """Image ``(B, 1, H, W)`` -> the last layer's final hidden state ``(B, hidden_size)``, reading ``H`` rows of ``W``
    pixels as a sequence; ``latent_dim`` = ``hidden_size``, so a Classifier can take it.

    Args:
        cell: ``rnn`` (tanh), ``gru`` or ``lstm``.
        hidden_size: width of the hidden state.
        layers: stacked recurrent layers.
        dropout: dropout between stacked layers (needs ``layers`` > 1 to act).
        tbptt_steps: detach the hidden state every this many rows (truncated BPTT); ``None``: full BPTT.
        input_size: pixels per row.
    """

    def __init__(
        self,
        cell: Cell = "gru",
        hidden_size: PositiveInt = 128,
        layers: PositiveInt = 1,
        dropout: Fraction = 0.0,
        tbptt_steps: Optional[PositiveInt] = None,
        input_size: PositiveInt = 28,
    ) -> None:
        super().__init__()
        check(Cell, cell=cell)
        check(PositiveInt, hidden_size=hidden_size, layers=layers, tbptt_steps=tbptt_steps, input_size=input_size)
        check(Fraction, dropout=dropout)
        self.cell, self.tbptt_steps, self.latent_dim = cell, tbptt_steps, hidden_size
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers=layers, batch_first=True,
                               dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.flatten(1, -2) if x.dim() == 4 else x  # (B, 1, H, W) -> (B, H, W): H steps of W pixels
        k = self.tbptt_steps or rows.shape[1]
        state = None
        for start in range(0, rows.shape[1], k):
            if state is not None:
                state = detach_state(state)  # truncated BPTT: no gradient flows to the rows before this chunk
            _, state = self.rnn(rows[:, start : start + k], state)
        h = state[0] if isinstance(state, tuple) else state  # (layers, B, hidden): the LSTM's h, not its cell c
        return h[-1]  # (B, hidden)

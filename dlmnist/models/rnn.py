"""RowRNN classifier: the Classifier with a :class:`~dlmnist.nn.recurrent.RowRNN` encoder given as its own arguments.

Each image is a sequence of 28 rows of 28 pixels; a recurrent network (RNN, GRU or LSTM) reads it top to bottom and
its final hidden state goes through the head. The training step, metrics, confusion matrix and predictions are the
Classifier's; what this subclass adds is the recurrent shape as direct arguments (``--model.cell=lstm``) and
truncated BPTT (``--model.tbptt_steps=7``), which happens in the encoder's forward pass.
"""

from __future__ import annotations

from typing import Optional

from dlmnist.models.classifier import Classifier
from dlmnist.models.optim import Optim
from dlmnist.nn.layers import Activation
from dlmnist.nn.recurrent import Cell, RowRNN
from dlmnist.utils.checks import Fraction, PositiveInt


class RowRNNClassifier(Classifier):
    """Row-by-row recurrent classifier: 28 rows -> ``layers`` recurrent layers -> final hidden state -> head -> logits.

    Args:
        cell: ``rnn`` (tanh), ``gru`` or ``lstm``.
        hidden_size: width of the hidden state.
        layers: stacked recurrent layers.
        dropout: dropout between stacked layers.
        tbptt_steps: truncated BPTT: detach the hidden state every this many rows, so the loss's gradient reaches
            only the last ``tbptt_steps`` rows; ``null``: backpropagation through all 28 rows.
        head_hidden, head_activation, head_dropout, num_classes, optim: as in :class:`~dlmnist.models.Classifier`.
    """

    def __init__(
        self,
        cell: Cell = "gru",
        hidden_size: PositiveInt = 128,
        layers: PositiveInt = 1,
        dropout: Fraction = 0.0,
        tbptt_steps: Optional[PositiveInt] = None,
        head_hidden: list[PositiveInt] = [],  # noqa: B006
        head_activation: Activation = "relu",
        head_dropout: Fraction = 0.0,
        num_classes: PositiveInt = 10,
        optim: Optim = Optim(),
    ) -> None:
        super().__init__(
            encoder=RowRNN(cell=cell, hidden_size=hidden_size, layers=layers, dropout=dropout, tbptt_steps=tbptt_steps),
            head_hidden=head_hidden,
            head_activation=head_activation,
            head_dropout=head_dropout,
            num_classes=num_classes,
            optim=optim,
        )

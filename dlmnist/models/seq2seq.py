"""DigitSeq2Seq: read a row of handwritten digits, write their labels in another order (reversed by default).

The data are the data module's MNIST batches, each cut into sequences of ``length`` digits side by side
(:func:`~dlmnist.data.sequences.digit_sequences`); the network is
:class:`~dlmnist.nn.encoder_decoder.DigitSeq2SeqNet` with one of three decoders (``attention``: ``none``,
``additive``, ``self``). Training uses teacher forcing; validation and test decode greedily, each step fed the
model's own previous prediction, and report the accuracy per digit (``acc_digit``) and per whole sequence
(``acc_seq``). At test time the attention weights of the first few test sequences are drawn
(``figures/test__attention.png``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlmnist.data.sequences import Order, digit_sequences
from dlmnist.models.base import Model, Stage
from dlmnist.models.optim import Optim
from dlmnist.nn.encoder_decoder import Attention, DigitSeq2SeqNet
from dlmnist.utils.checks import NonNegativeInt, PositiveInt, check


class DigitSeq2Seq(Model):
    """Encoder-decoder over sequences of MNIST digits.

    Args:
        length: digits per sequence (each batch of B images gives B // length sequences).
        order: the target: the digits' labels ``reversed``, ``sorted`` or in the ``same`` order.
        attention: ``none`` (the decoder sees only the encoder's final state), ``additive`` (Bahdanau attention
            of each decoder step over the encoder's states) or ``self`` (a transformer decoder: masked
            self-attention over encoder states and decoder tokens together, in place of encoder-decoder attention).
        hidden_size: width of the encoder and decoder states.
        embed_dim: width of the previous-label embedding of the recurrent decoders (``self`` uses ``hidden_size``).
        channels: channels of the per-digit CNN (5x5 then 3x3 convolutions, each after 2x2 pooling).
        heads: attention heads of the ``self`` decoder (``hidden_size`` must be a multiple).
        depth: transformer blocks of the ``self`` decoder.
        attention_sequences: test sequences drawn in the attention picture (0: none).
        optim: optimizer and schedule (:class:`~dlmnist.models.optim.Optim`).
    """

    monitor = ("val/acc_seq", "max")

    def __init__(
        self,
        length: PositiveInt = 4,
        order: Order = "reversed",
        attention: Attention = "additive",
        hidden_size: PositiveInt = 128,
        embed_dim: PositiveInt = 32,
        channels: list[PositiveInt] = [16, 32],  # noqa: B006
        heads: PositiveInt = 4,
        depth: PositiveInt = 2,
        attention_sequences: NonNegativeInt = 4,
        optim: Optim = Optim(),
    ) -> None:
        super().__init__(optim=optim)
        check(PositiveInt, length=length, hidden_size=hidden_size, embed_dim=embed_dim, heads=heads, depth=depth)
        check(NonNegativeInt, attention_sequences=attention_sequences)
        check(Order, order=order)
        self.save_hparams()
        self.net = DigitSeq2SeqNet(attention, hidden_size, embed_dim, channels, heads, depth)
        self._figure_batch = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Greedy decoding of wide images (N, 1, 28, L * 28): logits (N, L, 10), L read from the width."""
        return self.net(x)[0]

    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        x, y, placed = digit_sequences(*batch, self.hparams.length, self.hparams.order)  # (N, 1, 28, L*28), (N, L)
        if len(x) == 0:
            raise ValueError(f"a batch of {len(batch[0])} images holds no sequence of {self.hparams.length} digits")
        logits, weights = self.net(x, y if stage == "train" else None)  # teacher forcing only in training
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        hits = logits.detach().argmax(-1) == y  # (N, L)
        self.log_stage(stage, "loss", loss, prog_bar=True, batch_size=len(y))
        if stage == "train":
            self.add_to_epoch("train/acc_digit", hits.float().mean(1).sum(), len(y))
            self.add_to_epoch("train/acc_seq", hits.all(1).sum(), len(y))
        else:
            self.log_stage(stage, "acc_digit", hits.float().mean(), batch_size=len(y))
            self.log_stage(stage, "acc_seq", hits.all(1).float().mean(), prog_bar=True, batch_size=len(y))
        if stage == "test" and batch_idx == 0 and weights is not None and self.hparams.attention_sequences:
            k = self.hparams.attention_sequences
            self._figure_batch = (x[:k].cpu(), weights[:k].float().cpu(), placed[:k].cpu(), logits[:k].argmax(-1).cpu())
        return loss

    def on_test_epoch_end(self) -> None:
        figure, self._figure_batch = self._figure_batch, None
        if figure is None or not self.trainer.is_global_zero:
            return
        from dlmnist.utils.figures import log_figure  # matplotlib only when it draws
        from dlmnist.utils.sequence_figures import sequence_attention_figure

        x, weights, placed, preds = figure
        dm = self.trainer.datamodule
        images = dm.denormalize(x).clamp(0, 1) if dm is not None and hasattr(dm, "denormalize") else x
        kind = {"additive": "additive attention", "self": "self-attention onto the digits (heads, blocks averaged)"}
        title = (f"{kind[self.hparams.attention]}: decoder step (output, {self.hparams.order} order) "
                 f"x encoder position (digit placed)")
        log_figure(self.trainer, "test/attention", sequence_attention_figure(images, weights, placed, preds, title))

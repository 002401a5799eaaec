"""Encoder-decoder over a row of digit images: a recurrent encoder and three decoders that differ in how they
read it (``SEQ2SEQ_DECODERS``).

The encoder applies one small CNN to each 28 x 28 digit and runs a GRU over the digits left to right: a state
per digit, ``memory`` (B, L, H), and the final state (B, H). A decoder predicts T labels one by one, each step
fed the previous label (the true one in training, teacher forcing; its own prediction in greedy decoding), read
through ``nn.Embedding`` (index ``num_classes`` is the start token). Every decoder returns the logits (B, T, K)
and the attention weights (B, T, L) of each step over the digits (``None`` without attention).
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn as nn

from dlmnist.data.sequences import split_digits
from dlmnist.nn.conv_encoder import ConvEncoder
from dlmnist.nn.transformer import TransformerBlock
from dlmnist.utils.checks import check

Attention = Literal["none", "additive", "self"]


class DigitSequenceEncoder(nn.Module):
    """Wide image ``(B, 1, 28, L * 28)`` -> ``memory`` (B, L, H), a GRU state per digit, and the final state (B, H)."""

    def __init__(self, hidden_size: int, channels: list[int]) -> None:
        super().__init__()
        self.digit = ConvEncoder(channels=channels, kernel_sizes=[5] + [3] * (len(channels) - 1), paddings=0, pool=2,
                                 pool_first=True, latent_dim=hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        digits = split_digits(x)  # (B, L, 1, 28, 28)
        b, n = digits.shape[:2]
        features = self.digit(digits.flatten(0, 1)).view(b, n, -1)  # (B, L, H): each digit on its own
        memory, final = self.rnn(features)  # (B, L, H), (1, B, H)
        return memory, final[0]


class AdditiveAttention(nn.Module):
    """Bahdanau attention: ``score_j = v^T tanh(W s + U h_j)`` of a query ``s`` (B, H) over keys ``h`` (B, L, H);
    returns the context ``sum_j a_j h_j`` (B, H) and the weights ``a = softmax(score)`` (B, L)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.query, self.key = nn.Linear(hidden_size, hidden_size, bias=False), nn.Linear(hidden_size, hidden_size)
        self.v = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, s: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.v(torch.tanh(self.query(s).unsqueeze(1) + self.key(h))).squeeze(-1)  # (B, L)
        weights = scores.softmax(dim=-1)
        return (weights.unsqueeze(-1) * h).sum(dim=1), weights  # (B, H), (B, L)


class RecurrentDecoder(nn.Module):
    """GRU decoder. Without attention its context is the encoder's final state at every step (Cho et al., 2014);
    with it, the context of step t is the additive attention of the previous decoder state over the memory
    (Bahdanau et al., 2015). Each step's input is [embedded previous label; context]; logits from [state; context]."""

    def __init__(self, hidden_size: int, embed_dim: int, num_classes: int, attention: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes + 1, embed_dim)  # + the start token
        self.cell = nn.GRUCell(embed_dim + hidden_size, hidden_size)
        self.attention = AdditiveAttention(hidden_size) if attention else None
        self.out = nn.Linear(2 * hidden_size, num_classes)
        self.start = num_classes

    def forward(self, memory, final, steps: int, targets: Optional[torch.Tensor] = None):
        s, prev, logits, maps = final, torch.full_like(memory[:, 0, 0], self.start, dtype=torch.long), [], []
        for t in range(steps):
            if self.attention is None:
                context = final  # (B, H): the whole input in one vector
            else:
                context, a = self.attention(s, memory)  # (B, H), (B, L)
                maps.append(a)
            s = self.cell(torch.cat([self.embed(prev), context], dim=-1), s)
            logits.append(self.out(torch.cat([s, context], dim=-1)))
            prev = targets[:, t] if targets is not None else logits[-1].argmax(-1)
        return torch.stack(logits, 1), (torch.stack(maps, 1) if maps else None)  # (B, T, K), (B, T, L)


def sinusoid(n: int, dim: int, device=None) -> torch.Tensor:
    """Sinusoidal position codes (Vaswani et al., 2017) of positions 0..n-1: (n, dim)."""
    pos = torch.arange(n, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    code = torch.zeros(n, dim, device=device)
    code[:, 0::2], code[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: dim // 2])
    return code


class SelfAttentionDecoder(nn.Module):
    """Transformer decoder in which self-attention takes the place of encoder-decoder attention: the memory (L
    tokens) and the decoder's inputs (T tokens: embedded previous label + position) form one sequence, and
    ``depth`` pre-norm blocks of masked self-attention run over it. A memory token sees the memory; decoder token
    t sees the memory and decoder tokens up to t. The weights (B, T, L) are those of the decoder tokens onto the
    memory tokens, averaged over heads and blocks; the rest of each row's mass is on decoder tokens up to t."""

    def __init__(self, hidden_size: int, num_classes: int, heads: int, depth: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes + 1, hidden_size)  # + the start token
        self.kind = nn.Parameter(torch.zeros(2, hidden_size))  # memory / decoder token
        self.blocks = nn.ModuleList(TransformerBlock(hidden_size, heads, 2 * hidden_size) for _ in range(depth))
        self.norm = nn.LayerNorm(hidden_size)
        self.out = nn.Linear(hidden_size, num_classes)
        self.start = num_classes

    def _run(self, memory: torch.Tensor, inputs: torch.Tensor):
        n_mem, t = memory.shape[1], inputs.shape[1]
        dec = self.embed(inputs) + sinusoid(t, memory.shape[-1], memory.device) + self.kind[1]  # (B, T, H)
        z = torch.cat([memory + self.kind[0], dec], dim=1)  # (B, L + T, H)
        n = n_mem + t
        mask = torch.ones(n, n, dtype=torch.bool, device=z.device).tril()  # decoder: causal over its own tokens
        mask[:, :n_mem] = True  # every token sees the whole memory ...
        mask[:n_mem, n_mem:] = False  # ... and a memory token nothing else
        weights = 0.0
        for block in self.blocks:
            z, w = block(z, mask)  # (B, n, H), (B, heads, n, n)
            weights = weights + w.mean(1) / len(self.blocks)  # (B, n, n): heads and blocks averaged
        return self.out(self.norm(z[:, n_mem:])), weights[:, n_mem:, :n_mem]  # (B, T, K), (B, T, L)

    def forward(self, memory, final, steps: int, targets: Optional[torch.Tensor] = None):
        start = torch.full_like(memory[:, 0, 0], self.start, dtype=torch.long).unsqueeze(1)  # (B, 1)
        if targets is not None:  # teacher forcing: all steps at once
            return self._run(memory, torch.cat([start, targets[:, : steps - 1]], dim=1))
        inputs = start
        for _ in range(steps):  # greedy: each step's prediction becomes the next step's input
            logits, weights = self._run(memory, inputs)
            inputs = torch.cat([start, logits.argmax(-1)], dim=1)
        return logits, weights


class DigitSeq2SeqNet(nn.Module):
    """Wide image (B, 1, 28, L * 28) -> logits (B, L, K) and attention weights (B, L, L) or ``None``."""

    def __init__(self, attention: Attention, hidden_size: int, embed_dim: int, channels: list[int], heads: int,
                 depth: int, num_classes: int = 10) -> None:
        super().__init__()
        check(Attention, attention=attention)
        if attention == "self" and hidden_size % heads:
            raise ValueError(f"hidden_size {hidden_size} must be a multiple of heads {heads}")
        self.encoder = DigitSequenceEncoder(hidden_size, channels)
        if attention == "self":
            self.decoder = SelfAttentionDecoder(hidden_size, num_classes, heads, depth)
        else:
            self.decoder = RecurrentDecoder(hidden_size, embed_dim, num_classes, attention == "additive")

    def forward(self, x: torch.Tensor, targets: Optional[torch.Tensor] = None):
        memory, final = self.encoder(x)
        return self.decoder(memory, final, memory.shape[1], targets)

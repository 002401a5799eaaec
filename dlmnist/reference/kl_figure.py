"""``dlmnist bernoulli-kl``: KL(p1 || p2) and KL(p2 || p1) between Bernoulli distributions, over p2, for a few p1.

The picture behind the course sheet's question on the KL divergence of two Bernoulli distributions: the KL is 0
only at p2 = p1, grows without bound as p2 nears 0 or 1 (the second distribution calls the first one's likely
outcome impossible), and is not symmetric. The sheet's pair p1 = 0.4, p2 = 0.8 is marked with both values.
Numbers from :func:`dlmnist.reference.divergences.bernoulli_kl` (nats).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from dlmnist.reference.divergences import bernoulli_kl
from dlmnist.utils.figures import figure_png, subplots
from dlmnist.utils.files import atomic_write_bytes


def kl_figure(p1s: Sequence[float] = (0.1, 0.4, 0.7), mark: tuple[float, float] = (0.4, 0.8)):
    """Solid: KL(p1 || p2); dashed: KL(p2 || p1); one colour per p1; ``mark = (p1, p2)`` marked with both values."""
    p2 = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    fig, ax = subplots(figsize=(7, 4.5))
    for i, p1 in enumerate(p1s):
        color = f"C{i}"
        ax.plot(p2, bernoulli_kl(torch.tensor(p1), p2), color=color, label=f"KL({p1:g} || p2)")
        ax.plot(p2, bernoulli_kl(p2, torch.tensor(p1)), color=color, ls="--", label=f"KL(p2 || {p1:g})")
    a, b = (torch.tensor(v, dtype=torch.float64) for v in mark)
    forward, backward = bernoulli_kl(a, b).item(), bernoulli_kl(b, a).item()
    ax.plot([mark[1]] * 2, [forward, backward], "ko")
    ax.annotate(f"KL({mark[0]:g} || {mark[1]:g}) = {forward:.3f}", (mark[1], forward), xytext=(-40, 45),
                textcoords="offset points", ha="right", arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.annotate(f"KL({mark[1]:g} || {mark[0]:g}) = {backward:.3f}", (mark[1], backward), xytext=(-40, 25),
                textcoords="offset points", ha="right", arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.set(xlabel="p2", ylabel="KL divergence (nats)", ylim=(0, 2.0), xlim=(0, 1))
    ax.set_title("KL between Bernoulli(p1) and Bernoulli(p2): zero at p2 = p1, not symmetric")
    ax.legend(fontsize=8, ncol=2)
    return fig, forward, backward


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist bernoulli-kl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--p1", type=float, nargs="+", default=[0.1, 0.4, 0.7], help="p1 values, one curve pair each")
    parser.add_argument("--mark", type=float, nargs=2, default=[0.4, 0.8], metavar=("P1", "P2"))
    parser.add_argument("--out", default="bernoulli_kl.png", help="PNG to write")
    args = parser.parse_args(argv)
    if not all(0 < p < 1 for p in [*args.p1, *args.mark]):
        parser.error("p1 and --mark values must lie strictly between 0 and 1")
    fig, forward, backward = kl_figure(args.p1, tuple(args.mark))
    path = atomic_write_bytes(Path(args.out), figure_png(fig))
    p1, p2 = args.mark
    print(f"KL({p1:g} || {p2:g}) = {forward:.4f} nats, KL({p2:g} || {p1:g}) = {backward:.4f} nats; figure: {path}")
    return 0

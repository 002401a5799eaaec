"""``python -m dlmnist.models.upgrade CKPT [CKPT ...]``: make checkpoints written before ``optim`` loadable.

Models used to take ``lr``, ``weight_decay``, ``optimizer``, ``schedule`` and ``warmup`` (the stacked autoencoder
``finetune_lr``) as their own arguments; they now take one ``optim`` (:class:`~dlmnist.models.optim.Optim`).
This moves those hyper-parameters of a checkpoint into ``optim`` and rewrites the file in place (atomically);
weights are untouched. A checkpoint that needs nothing is left as it is.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch

from dlmnist.utils.files import atomic_write_bytes

LEGACY = {"lr": "lr", "finetune_lr": "lr", "weight_decay": "weight_decay", "optimizer": "name", "schedule": "schedule",
          "warmup": "warmup"}  # fmt: skip


def upgrade_hparams(hparams: dict) -> bool:
    """Move the legacy optimizer keys of ``hparams`` into ``hparams["optim"]``; True when something moved."""
    moved = {LEGACY[k]: hparams.pop(k) for k in list(hparams) if k in LEGACY}
    if not moved:
        return False
    hparams["optim"] = {**moved, **dict(hparams.get("optim") or {})}
    return True


def upgrade_checkpoint(path: Path) -> bool:
    """Rewrite ``path`` with upgraded hyper-parameters; False (and the file untouched) when it needs nothing."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not upgrade_hparams(ckpt.get("hyper_parameters", {})):
        return False
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlmnist.models.upgrade", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        if not path.is_file():
            parser.error(f"{path}: no such checkpoint file")
        print(f"{path}: {'upgraded' if upgrade_checkpoint(path) else 'already current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

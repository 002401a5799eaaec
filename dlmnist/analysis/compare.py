"""``dlmnist compare CKPT [CKPT ...] --out FILE.png``: test digits beside what each autoencoder makes of them.

E.g. the conv autoencoder next to the decoder trained on a frozen classifier encoder:
``dlmnist compare runs/ae_conv/version_0/checkpoints/best.ckpt runs/decoder_frozen/version_0/checkpoints/best.ckpt
--out reports/decoding.png``. The first ``--num`` test digits (prepared as in the first checkpoint's run)
are shown as panels of 8 per row: the originals, then one panel per checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.utils.figures import figure_png, panels_figure
from dlmnist.utils.files import atomic_write_bytes


def main(argv: list[str]) -> int:
    import dlmnist.models  # noqa: F401  (the classes a checkpoint may name must be imported)

    parser = argparse.ArgumentParser(prog="dlmnist compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="autoencoder checkpoints")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--num", type=int, default=64, help="number of test digits")
    parser.add_argument("--titles", default=None, help="comma-separated panel titles, one per checkpoint")
    parser.add_argument("--data_dir", default=None, help="data folder (default: the one the first run used)")
    args = parser.parse_args(argv)
    titles = args.titles.split(",") if args.titles else [f"{c.parent.parent.parent.name}" for c in args.checkpoints]
    if len(titles) != len(args.checkpoints):
        parser.error(f"--titles has {len(titles)} names for {len(args.checkpoints)} checkpoints")
    for ckpt in args.checkpoints:
        if not ckpt.is_file():
            parser.error(f"{ckpt}: no such checkpoint file")
    data = dict(torch.load(args.checkpoints[0], map_location="cpu", weights_only=False)["datamodule_hyper_parameters"])
    if args.data_dir is not None:
        data["data_dir"] = args.data_dir
    dm = MNISTDataModule(**{k: v for k, v in data.items() if not k.startswith("_")})
    dm.setup("test")
    x = dm.test_x[: args.num]
    panels = [("test digits", dm.denormalize(x))]
    for ckpt, title in zip(args.checkpoints, titles):
        model = L.LightningModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
        with torch.no_grad():
            panels.append((title, model(x)))  # (N, 1, 28, 28) in [0, 1]
    atomic_write_bytes(args.out, figure_png(panels_figure(panels, ncols=8)))
    print(f"written {args.out}")
    return 0

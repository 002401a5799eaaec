"""``dlmnist latent CKPT [CKPT ...]``: latent-space metrics and 2-D scatters of the test codes of trained models.

For each checkpoint (a classifier, an autoencoder: any dlmnist model with an encoder) the test set, prepared
as in that run (same data set, same normalisation), is encoded; ``latent_metrics.json`` and
``figures/latent__pca.png`` (and ``latent__tsne.png`` with scikit-learn) go into the checkpoint's run
folder, and a table comparing the checkpoints is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.utils.figures import figure_png
from dlmnist.utils.files import atomic_write_bytes, atomic_write_text
from dlmnist.utils.latent_metrics import latent_metrics, pca_2d, scatter_figure, tsne_2d

COLUMNS = ("latent_dim", "spread", "separation", "ratio", "silhouette", "knn5_accuracy", "linear_probe_accuracy")


@torch.no_grad()
def encode(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``model.codes`` of every image (N, D): the encoder's output, or a VAE's posterior mean of z."""
    model.eval()
    return torch.cat([model.codes(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def analyse(ckpt: Path, data_dir: str | None = None, tsne: bool = True, tsne_points: int = 3000) -> dict:
    import dlmnist.models  # noqa: F401  (the classes a checkpoint may name must be imported)

    model = L.LightningModule.load_from_checkpoint(ckpt, map_location="cpu")
    if not hasattr(model, "encoder"):
        raise SystemExit(f"dlmnist latent: {ckpt} holds a {type(model).__name__}, which has no encoder")
    data = dict(torch.load(ckpt, map_location="cpu", weights_only=False).get("datamodule_hyper_parameters", {}))
    if data_dir is not None:
        data["data_dir"] = data_dir
    dm = MNISTDataModule(**{k: v for k, v in data.items() if not k.startswith("_")})
    dm.setup("test")
    codes = encode(model, dm.test_x)
    metrics = latent_metrics(codes, dm.test_y)
    print(f"{ckpt}: {type(model).__name__}, codes: {model.code_description}, latent_dim {codes.shape[1]}")
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    name = f"{run.parent.name}/{run.name}"
    atomic_write_text(run / "latent_metrics.json", json.dumps(metrics, indent=2) + "\n")
    pca = scatter_figure(pca_2d(codes), dm.test_y, f"{name}: test codes, PCA")
    atomic_write_bytes(run / "figures" / "latent__pca.png", figure_png(pca))
    if tsne:
        few = torch.randperm(len(codes), generator=torch.Generator().manual_seed(0))[:tsne_points]
        points = tsne_2d(codes[few])
        if points is not None:
            fig = scatter_figure(points, dm.test_y[few], f"{name}: {len(few)} test codes, t-SNE")
            atomic_write_bytes(run / "figures" / "latent__tsne.png", figure_png(fig))
    return {"run": name, "codes": model.code_description, **metrics}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist latent", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint files (runs/<name>/version_<n>/...)")
    parser.add_argument("--data_dir", default=None, help="data folder (default: the one the run used)")
    parser.add_argument("--no_tsne", action="store_true", help="skip t-SNE (about a minute per model on a CPU)")
    args = parser.parse_args(argv)
    for ckpt in args.checkpoints:
        if not ckpt.is_file():
            parser.error(f"{ckpt}: no such checkpoint file")
    rows = [analyse(ckpt, args.data_dir, tsne=not args.no_tsne) for ckpt in args.checkpoints]
    width = max(len(r["run"]) for r in rows)
    print(f"{'run':<{width}}  " + "  ".join(f"{c:>10.10}" for c in COLUMNS))
    for r in rows:
        print(f"{r['run']:<{width}}  " + "  ".join(f"{r[c]:>10.4g}" for c in COLUMNS))
    return 0

"""The VAE's importance-weighted NLL (k = 5000): the plain way against the package's, side by side in one process.

The plain way is the estimate as written: k samples of z through the decoder, the training loss's
``binary_cross_entropy_with_logits`` for log p(x|z), a logsumexp. The package's (``VAE.importance_weighted_nll``)
sums the same likelihood without autograd and in place, in float32 (``32-true``) and with the decoder under
bfloat16 autocast (``bf16-mixed``; float32 on a CPU without native bf16). Each is timed on the same binarised
test images of ``configs/vae.yaml``'s model (a checkpoint with ``--checkpoint``, else freshly initialised: the
work is the same), interleaved, best of ``--repeats``, with all of torch's threads; the times are projected to
the 10,000 test images. ``python -m benchmarks.vae_nll``; part ``nll`` of `make bench`.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from benchmarks.shared import DATA, ROOT
from dlmnist.losses import bernoulli_log_likelihood, log_normal

K = 5000


@torch.no_grad()
def plain_nll(vae, x: torch.Tensor, k: int = K, rows: int = 20_000) -> torch.Tensor:
    """-log p(x) (B,) written out: samples (c, B, L) through the decoder, the training loss, a logsumexp."""
    mean, logvar = vae.encode(x)
    std, log_w = (0.5 * logvar).exp(), []
    chunk = max(1, rows // len(x))
    for c in [min(chunk, k - i) for i in range(0, k, chunk)]:
        z = mean + std * torch.randn(c, *mean.shape)
        log_px = bernoulli_log_likelihood(vae.decoder(z.flatten(0, 1)), x.repeat(c, 1, 1, 1)).view(c, -1)
        log_w.append(log_px + log_normal(z) - log_normal(z, mean, logvar))
    return math.log(k) - torch.logsumexp(torch.cat(log_w), dim=0)


def load_vae(checkpoint: str | None):
    from dlmnist.config import model_from_config
    from dlmnist.models import VAE

    if checkpoint:
        return VAE.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    return model_from_config(str(ROOT / "configs" / "vae.yaml")).eval()


def vae_nll(images: int = 100, repeats: int = 2, checkpoint: str | None = None, k: int = K) -> dict:
    from dlmnist.data import MNISTDataModule

    vae = load_vae(checkpoint)
    dm = MNISTDataModule(data_dir=str(DATA), normalize=False, eval_batch_size=images)
    dm.setup("test")
    x = vae.targets(next(iter(dm.test_dataloader()))[0], "test")

    def package(precision: str):
        def run() -> torch.Tensor:
            vae.hparams.nll_precision = precision
            return vae.importance_weighted_nll(x, k)

        return run

    ways = {"plain": lambda: plain_nll(vae, x, k), "32-true": package("32-true"), "bf16-mixed": package("bf16-mixed")}
    times: dict = {name: [] for name in ways}
    nll: dict = {}
    vae.importance_weighted_nll(x[:4], 100)  # warm-up
    for _ in range(repeats):
        for name, run in ways.items():
            torch.manual_seed(0)
            start = time.perf_counter()
            nll[name] = run().mean().item()
            times[name].append(time.perf_counter() - start)
    per_10k = {name: round(min(t) / len(x) * 10_000 / 60, 2) for name, t in times.items()}
    return {
        "vae_nll_minutes_per_10k": per_10k,
        "vae_nll_ratio_float32": round(per_10k["plain"] / per_10k["32-true"], 2),
        "vae_nll_ratio_bf16": round(per_10k["plain"] / per_10k["bf16-mixed"], 2),
        "vae_nll_nats": {name: round(v, 4) for name, v in nll.items()},
        "vae_nll_setup": {"images": len(x), "k": k, "threads": torch.get_num_threads(), "checkpoint": checkpoint},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="test images timed (projected to 10,000)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timings per way (best kept)")
    parser.add_argument("--checkpoint", help="a VAE checkpoint (default: configs/vae.yaml's model, untrained)")
    parser.add_argument("--k", type=int, default=K, help="importance samples per image")
    args = parser.parse_args()
    result = vae_nll(args.images, args.repeats, args.checkpoint, args.k)
    for name, minutes in result["vae_nll_minutes_per_10k"].items():
        nats = result["vae_nll_nats"][name]
        print(f"{name:11s} {minutes:6.2f} min per 10,000 images   NLL {nats:.4f} nats on {args.images} images")
    print(f"plain / 32-true: {result['vae_nll_ratio_float32']}x, plain / bf16-mixed: {result['vae_nll_ratio_bf16']}x")


if __name__ == "__main__":
    main()

"""Latent-space numbers and pictures for any model with an encoder: spread within digits, separation between
them, silhouette, probe accuracies; 2-D scatters (PCA, t-SNE when scikit-learn is installed).

``latent_metrics(codes, labels)`` answers "where is the in-class variability higher, where are the digits
further apart" with numbers: ``spread`` (mean distance of a code to its class centroid, averaged over
classes; per class in ``spread_per_class``), ``separation`` (mean distance between class centroids),
``ratio`` = separation / spread, ``silhouette`` (in [-1, 1], on a seeded sample), and the test accuracy of
a k-nearest-neighbour and of a linear (logistic regression) probe trained on one half of the codes and
tested on the other. Distances depend on the code's scale: compare ``ratio`` and ``silhouette`` across models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_centroids(codes: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classes present and their centroids ``(K, D)``."""
    classes = labels.unique()
    return classes, torch.stack([codes[labels == c].mean(0) for c in classes])


def silhouette(codes: torch.Tensor, labels: torch.Tensor, chunk: int = 1024) -> float:
    """Mean silhouette ``(b - a) / max(a, b)`` with Euclidean distances (0 for a point alone in its class)."""
    _, idx = labels.unique(return_inverse=True)
    onehot = F.one_hot(idx).double()  # (N, K)
    counts = onehot.sum(0)
    scores = []
    for start in range(0, len(codes), chunk):
        rows = slice(start, start + chunk)
        sums = torch.cdist(codes[rows].double(), codes.double()) @ onehot  # (n, K) summed distances per class
        own = idx[rows]
        ar = torch.arange(len(own))
        a = sums[ar, own] / (counts[own] - 1).clamp(min=1)
        other = sums / counts
        other[ar, own] = float("inf")
        b = other.min(dim=1).values
        s = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
        scores.append(torch.where(counts[own] > 1, s, torch.zeros_like(s)))
    return torch.cat(scores).mean().item()


def knn_accuracy(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, k: int = 5):
    """Accuracy of a majority vote among the ``k`` nearest training codes (ties: the smaller label)."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    correct = 0
    for start in range(0, len(test), 1024):
        near = torch.cdist(test[start : start + 1024], train).topk(k, largest=False).indices  # (n, k)
        votes = F.one_hot(train_y[near], num_classes).sum(1)  # (n, K)
        correct += (votes.argmax(1) == test_y[start : start + 1024]).sum().item()
    return correct / len(test)


def linear_probe_accuracy(train, train_y, test, test_y, steps: int = 100, weight_decay: float = 1e-4) -> float:
    """Accuracy of a logistic regression on standardised codes, fitted with L-BFGS (deterministic)."""
    with torch.inference_mode(False), torch.enable_grad():  # also inside Lightning's test loop
        return _linear_probe(*(t.clone() for t in (train, train_y, test, test_y)), steps, weight_decay)


def _linear_probe(train, train_y, test, test_y, steps: int, weight_decay: float) -> float:
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    xs, xt = (train - mean) / std, (test - mean) / std
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    linear = torch.nn.Linear(train.shape[1], num_classes).double()
    torch.nn.init.zeros_(linear.weight), torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(xs.double()), train_y) + weight_decay * linear.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (linear(xt.double()).argmax(1) == test_y).double().mean().item()


def latent_metrics(codes: torch.Tensor, labels: torch.Tensor, k: int = 5, sample: int = 5000, seed: int = 0):
    """All the numbers above for codes ``(N, D)`` and labels ``(N,)``; a JSON-ready dict."""
    codes, labels = codes.detach().float().cpu(), labels.cpu()
    classes, centroids = class_centroids(codes, labels)
    spread = {int(c): (codes[labels == c] - m).norm(dim=1).mean().item() for c, m in zip(classes, centroids)}
    pair = torch.cdist(centroids, centroids)
    separation = pair[~torch.eye(len(classes), dtype=torch.bool)].mean().item()
    mean_spread = sum(spread.values()) / len(spread)
    perm = torch.randperm(len(codes), generator=torch.Generator().manual_seed(seed))
    sub = perm[:sample]
    half = len(perm) // 2
    a, b = perm[:half], perm[half:]
    return {
        "num_codes": len(codes),
        "latent_dim": codes.shape[1],
        "spread": mean_spread,
        "separation": separation,
        "ratio": separation / max(mean_spread, 1e-12),
        "silhouette": silhouette(codes[sub], labels[sub]),
        f"knn{k}_accuracy": knn_accuracy(codes[a], labels[a], codes[b], labels[b], k),
        "linear_probe_accuracy": linear_probe_accuracy(codes[a], labels[a], codes[b], labels[b]),
        "spread_per_class": spread,
    }


def pca_2d(codes: torch.Tensor) -> torch.Tensor:
    """Projection ``(N, 2)`` on the two leading principal components."""
    centred = codes.float() - codes.float().mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T


def tsne_2d(codes: torch.Tensor, seed: int = 0):
    """t-SNE embedding ``(N, 2)``, or ``None`` when scikit-learn is not installed."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return None
    out = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(codes.float().numpy())
    return torch.from_numpy(out)


def scatter_figure(points: torch.Tensor, labels: torch.Tensor, title: str):
    """2-D points coloured by digit, with a legend."""
    from dlmnist.utils.figures import colormap, subplots

    fig, ax = subplots(figsize=(6, 5.5))
    for c in labels.unique().tolist():
        pts = points[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=colormap("tab10")(c % 10), label=str(c))
    ax.legend(markerscale=4, fontsize=8, loc="best", title="digit")
    ax.set_title(title)
    return fig

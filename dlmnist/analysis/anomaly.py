"""Anomaly detection without a network: PCA reconstruction error, the baseline for an autoencoder's.

Leave-one-digit-out protocol (``configs/suite.yaml``: ``ae_anomaly_d0`` .. ``ae_anomaly_d9``): a model of the
training images without digit d scores every test image by its reconstruction error; the AUROC says how well
that error tells the d's from the other digits. The baseline keeps the first ``k`` principal components of the
same training images (``k`` = the autoencoder's code size) and scores by the error of that projection.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import binary_auroc


def pca_scores(train: torch.Tensor, test: torch.Tensor, k: int) -> torch.Tensor:
    """Mean squared error (M,) of each test image's projection onto the first ``k`` principal components of
    ``train``; images flattened, (N, ...) and (M, ...). Deterministic: eigenvectors of the covariance."""
    a, b = train.flatten(1).double(), test.flatten(1).double()
    mean = a.mean(0)
    cov = (a - mean).T @ (a - mean) / len(a)  # (D, D)
    components = torch.linalg.eigh(cov).eigenvectors[:, -k:]  # (D, k): the largest eigenvalues come last
    centred = b - mean
    recon = centred @ components @ components.T
    return (recon - centred).square().mean(1).float()


def pca_auroc(train: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, held_out: list[int], k: int) -> float:
    """AUROC of the held-out digits against the rest, scored by PCA reconstruction error."""
    is_anomaly = torch.isin(test_labels, torch.tensor(held_out)).long()
    return float(binary_auroc(pca_scores(train, test, k), is_anomaly))

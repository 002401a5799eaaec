"""The PCA baseline of the anomaly protocol."""

from __future__ import annotations

import torch

from dlmnist.analysis.anomaly import pca_auroc, pca_scores


def test_pca_reconstructs_what_lies_in_its_subspace_and_flags_what_does_not():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(20, 3, generator=g)).Q  # (20, 3)
    normal = torch.randn(500, 3, generator=g) @ basis.T  # in a 3-d subspace
    outside = torch.randn(50, 20, generator=g)
    scores = pca_scores(normal, torch.cat([normal[:50], outside]), k=3)
    assert scores[:50].max() < 1e-8 and scores[50:].min() > 0.05
    labels = torch.tensor([0] * 50 + [9] * 50)
    assert pca_auroc(normal, torch.cat([normal[:50], outside]), labels, [9], k=3) == 1.0
    assert 0.0 <= pca_auroc(normal, torch.cat([normal[:50], outside]), labels, [0], k=3) < 0.01


def test_a_report_section_can_end_with_the_mean_of_its_numeric_columns(tmp_path):
    from dlmnist.report.tables import Experiment, section_table

    exps = [Experiment(f"ae_anomaly_d{d}", tmp_path, {"data": {"exclude_classes": [d]}}, test={"test/auroc": v})
            for d, v in ((0, 0.5), (1, 0.7))]
    exps.append(Experiment("ae_anomaly_d2", None))
    table = section_table(exps, {"held out": "data.exclude_classes"}, [], mean=True)
    assert table[-1].startswith("| **mean** |") and "| 0.6 |" in table[-1]
    assert "not run" in table[-2]

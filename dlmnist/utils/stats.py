"""The seed spread of a metric: mean and sample standard deviation over the runs of one experiment."""

from __future__ import annotations

from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample standard deviation)`` of ``values`` (n - 1 in the denominator; 0 for a single value)."""
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5

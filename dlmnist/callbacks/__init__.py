from dlmnist.callbacks.writers import PredictionWriter, TestMetricsWriter

__all__ = ["PredictionWriter", "TestMetricsWriter"]

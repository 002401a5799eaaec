from dlmnist.callbacks.latent import LatentSpace
from dlmnist.callbacks.reconstructions import ReconstructionGrid
from dlmnist.callbacks.writers import PredictionWriter, TestMetricsWriter

__all__ = ["LatentSpace", "PredictionWriter", "ReconstructionGrid", "TestMetricsWriter"]

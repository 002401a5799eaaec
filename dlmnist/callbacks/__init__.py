from dlmnist.callbacks.gradients import GradientStats
from dlmnist.callbacks.latent_space import LatentSpace
from dlmnist.callbacks.perf import Compile
from dlmnist.callbacks.reconstructions import ReconstructionGrid
from dlmnist.callbacks.step_stats import StepStats
from dlmnist.callbacks.test_curve import TestCurve
from dlmnist.callbacks.writers import PredictionWriter, TestMetricsWriter

__all__ = ["Compile", "GradientStats", "LatentSpace", "PredictionWriter", "ReconstructionGrid", "StepStats",
           "TestCurve", "TestMetricsWriter"]

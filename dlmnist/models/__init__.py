from dlmnist.models.classifier import Classifier
from dlmnist.models.stacked_ae import StackedAutoEncoder

__all__ = ["Classifier", "StackedAutoEncoder"]

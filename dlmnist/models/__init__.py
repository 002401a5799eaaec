from dlmnist.models.classifier import Classifier

__all__ = ["Classifier"]

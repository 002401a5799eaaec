from dlmnist.models.autoencoder import AutoEncoder
from dlmnist.models.classifier import Classifier
from dlmnist.models.pretrained import EncoderCheckpointError, load_encoder

__all__ = ["AutoEncoder", "Classifier", "EncoderCheckpointError", "load_encoder"]

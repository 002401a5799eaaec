from dlmnist.models.classifier import Classifier
from dlmnist.models.stacked_ae import StackedAutoEncoder
from dlmnist.models.vae import VAE
from dlmnist.models.vit import ViT

__all__ = ["VAE", "Classifier", "StackedAutoEncoder", "ViT"]

from dlmnist.models.autoencoder import AutoEncoder
from dlmnist.models.base import Model
from dlmnist.models.classifier import Classifier
from dlmnist.models.gan import GAN
from dlmnist.models.optim import Optim
from dlmnist.models.pretrained import EncoderCheckpointError, load_encoder
from dlmnist.models.seq2seq import DigitSeq2Seq
from dlmnist.models.stacked_ae import StackedAutoEncoder
from dlmnist.models.vae import VAE
from dlmnist.models.vit import ViT

__all__ = [
    "GAN",
    "VAE",
    "AutoEncoder",
    "Classifier",
    "DigitSeq2Seq",
    "EncoderCheckpointError",
    "Model",
    "Optim",
    "StackedAutoEncoder",
    "ViT",
    "load_encoder",
]

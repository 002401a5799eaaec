from dlmnist.nn.conv import ConvEncoder, conv_out
from dlmnist.nn.decoder import ConvDecoder, DenseDecoder, DenseEncoder
from dlmnist.nn.layers import MLP, make_activation
from dlmnist.nn.stack import DenseStack

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "DenseDecoder",
    "DenseEncoder",
    "DenseStack",
    "MLP",
    "conv_out",
    "make_activation",
]

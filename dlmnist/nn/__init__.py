from dlmnist.nn.attention import MultiHeadSelfAttention
from dlmnist.nn.conv import ConvEncoder, conv_out
from dlmnist.nn.decoder import ConvDecoder, DenseDecoder, DenseEncoder
from dlmnist.nn.layers import MLP, make_activation
from dlmnist.nn.stack import DenseStack
from dlmnist.nn.vit import PatchEmbedding, TransformerBlock, VisionTransformer

__all__ = [
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "DenseDecoder",
    "DenseEncoder",
    "DenseStack",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "TransformerBlock",
    "VisionTransformer",
    "conv_out",
    "make_activation",
]

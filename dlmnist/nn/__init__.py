from dlmnist.nn.conv_decoder import ConvDecoder
from dlmnist.nn.conv_encoder import ConvEncoder, conv_out
from dlmnist.nn.dense import DenseDecoder, DenseEncoder
from dlmnist.nn.layers import MLP, make_activation
from dlmnist.nn.recurrent import RowRNN
from dlmnist.nn.self_attention import MultiHeadSelfAttention
from dlmnist.nn.stack import DenseStack
from dlmnist.nn.transformer import PatchEmbedding, TransformerBlock, VisionTransformer

__all__ = [
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "DenseDecoder",
    "DenseEncoder",
    "DenseStack",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "RowRNN",
    "TransformerBlock",
    "VisionTransformer",
    "conv_out",
    "make_activation",
]

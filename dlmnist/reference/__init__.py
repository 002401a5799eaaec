"""NumPy reference implementations of the layers the models use, with forward and backward, for reading.

``layers``: Conv1d, Conv2d, MaxPool2d, AvgPool2d, Flatten, ReLU, Tanh, Linear; ``model``: softmax
cross-entropy, Sequential, SGD, LeNet-5; ``gradcheck``: central-difference numerical gradients.
``python -m dlmnist.reference.train_lenet5`` trains the NumPy LeNet-5 on a small MNIST subset.

Also teaching code that no model runs: ``embedding`` (``nn.Embedding`` by hand: an index lookup with its own
backward, and one-hot times the weight), ``attention`` (self-attention in NumPy and PyTorch), ``backprop`` (the
two-layer MLP's gradients by hand; ``python -m dlmnist.reference.backprop`` compares them with autograd),
``divergences`` (Gaussian and Bernoulli KL), ``jacobian`` (layers as matrices: Toeplitz convolutions, adjoints)
and ``shift`` (translation equivariance and invariance of convolutions and pooling,
``python -m dlmnist.reference.shift``).
"""

from dlmnist.reference.gradcheck import numerical_gradient, relative_error
from dlmnist.reference.model import SGD, Sequential, lenet5, softmax_cross_entropy
from dlmnist.reference.numpy_layers import AvgPool2d, Conv1d, Conv2d, Flatten, Layer, Linear, MaxPool2d, ReLU, Tanh

__all__ = [
    "SGD",
    "AvgPool2d",
    "Conv1d",
    "Conv2d",
    "Flatten",
    "Layer",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Tanh",
    "lenet5",
    "numerical_gradient",
    "relative_error",
    "softmax_cross_entropy",
]

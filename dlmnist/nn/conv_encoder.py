"""The convolutional encoder shared by the classifiers, the autoencoders and transfer learning."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, Optional, Union

import torch
import torch.nn as nn

from dlmnist.nn.layers import Activation, make_activation, per_layer
from dlmnist.utils.checks import Fraction, PositiveInt, check
from dlmnist.utils.init_config import RemembersInit


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling layer: floor((W + 2P - D(K-1) - 1) / S) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class ConvEncoder(RemembersInit, nn.Module):
    """Image ``(B, C, H, W)`` -> feature vector ``(B, latent_dim)``.

    Each layer ``i`` is conv(``channels[i]``, ``kernel_sizes[i]``, ``strides[i]``, ``paddings[i]``, ``dilations[i]``)
    -> [batch norm] -> activation -> [``pool[i]`` x ``pool[i]`` pooling, when > 1]. The last
    feature map is flattened and, when ``latent_dim`` is set, mapped to it by a fully connected
    layer (followed by the activation when ``latent_activation``).

    Args:
        channels: output channels of each conv layer.
        kernel_sizes: one kernel size, or one per layer.
        strides: one stride, or one per layer.
        paddings: one padding, or one per layer; ``None`` pads ``dilation * (kernel // 2)`` ("same" for stride 1).
        dilations: one dilation, or one per layer: a ``k x k`` kernel with dilation ``d`` spans
            ``d (k - 1) + 1`` pixels with the same ``k * k`` weights, so the receptive field grows faster
            without pooling or striding away resolution (``dlmnist summarize`` shows it).
        pool: pooling window (= stride) after each layer, 1 for none; one value or one per layer.
        pool_type: ``max`` or ``avg`` pooling.
        pool_first: pool right after the conv, before batch norm and activation: 4x less norm and
            activation work with 2x2 pooling (measurably faster on a CPU); off keeps the textbook order.
        batch_norm: batch norm after each conv.
        residual: make each layer a residual block, ``activation(norm(conv(x)) + skip(x))`` then the pooling
            (with ``pool_first``, both branches pool before the sum): the skip is ``x`` itself when the
            channels stay the same and the stride is 1, else a 1x1 convolution with the layer's stride (and
            batch norm). Each conv then learns the change ``y - x``, not ``y`` (sheet 002, CNNs 4). The conv
            must keep the size a 1x1 conv gives (``paddings: null``, i.e. "same", does).
        dropout: dropout on the flattened features, before the fully connected layer.
        activation: non-linearity after each conv (and the latent layer).
        latent_dim: size of the output vector; ``None`` keeps the flattened feature map.
        latent_activation: apply the activation to the latent vector too.
        in_channels: channels of the input image.
        input_size: height = width of the input image.
        channels_last: keep the conv weights, and so the activations, in channels-last (NHWC) memory
            format: oneDNN's CPU convolutions, pooling and their backward passes are faster in it
            (a `configs/cnn.yaml` epoch 1.3-1.45x faster on 2 CPU cores). The state dict is the same
            either way, so checkpoints load into both.
    """

    def __init__(
        self,
        channels: list[PositiveInt] = [32, 64],  # noqa: B006 (jsonargparse reads the default)
        kernel_sizes: Union[int, list[int]] = 3,
        strides: Union[int, list[int]] = 1,
        paddings: Union[int, list[int], None] = None,
        dilations: Union[PositiveInt, list[PositiveInt]] = 1,
        pool: Union[int, list[int]] = 2,
        pool_type: Literal["max", "avg"] = "max",
        pool_first: bool = False,
        batch_norm: bool = True,
        residual: bool = False,
        dropout: Fraction = 0.0,
        activation: Activation = "relu",
        latent_dim: Optional[PositiveInt] = 128,
        latent_activation: bool = True,
        in_channels: int = 1,
        input_size: int = 28,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        n = len(channels)
        if n == 0:
            raise ValueError("channels must be a non-empty list")
        check(PositiveInt, channels=channels, latent_dim=latent_dim, dilations=dilations)
        check(Fraction, dropout=dropout)
        kernels = per_layer(kernel_sizes, n, "kernel_sizes")
        strides_ = per_layer(strides, n, "strides")
        dils = per_layer(dilations, n, "dilations")
        pads = [d * (k // 2) for k, d in zip(kernels, dils)] if paddings is None else per_layer(paddings, n, "paddings")
        pools = per_layer(pool, n, "pool")
        pool_cls = nn.MaxPool2d if pool_type == "max" else nn.AvgPool2d

        blocks, c_in, size = [], in_channels, input_size
        self.layer_sizes: list[tuple[int, int, int]] = []  # (C, H, W) after each block
        for i, (c, k, s, p, d, q) in enumerate(zip(channels, kernels, strides_, pads, dils, pools)):
            size_conv = conv_out(size, k, s, p, d)
            size_out = size_conv // q if q > 1 else size_conv
            if size_conv < 1 or size_out < 1:
                raise ValueError(
                    f"ConvEncoder layer {i + 1} (conv {k}x{k}, stride {s}, padding {p}, dilation {d}, pool {q}) "
                    f"shrinks its {size}x{size} input to {max(size_out, 0)}x{max(size_out, 0)}: "
                    "use smaller kernel_sizes, dilations, strides or pool, more padding, or fewer layers"
                )
            if residual and size_conv != conv_out(size, 1, s):
                raise ValueError(
                    f"ConvEncoder layer {i + 1}: residual needs the conv to keep the size a 1x1 skip gives "
                    f"({conv_out(size, 1, s)}x{conv_out(size, 1, s)}), but conv {k}x{k}, padding {p}, dilation {d} "
                    f"gives {size_conv}x{size_conv}: use paddings: null (\"same\") with residual"
                )
            block = [("conv", nn.Conv2d(c_in, c, k, s, p, dilation=d, bias=not batch_norm))]
            if batch_norm:
                block.append(("norm", nn.BatchNorm2d(c)))
            block.append(("act", make_activation(activation)))
            if q > 1:
                block.insert(1 if pool_first else len(block), ("pool", pool_cls(q)))
            if residual:
                skip = identity_or_projection(c_in, c, s, batch_norm)
                blocks.append(ResidualBlock(OrderedDict(block), skip, pool_cls(q) if q > 1 and pool_first else None))
            else:
                blocks.append(nn.Sequential(OrderedDict(block)))
            c_in, size = c, size_out
            self.layer_sizes.append((c, size, size))

        self.features = nn.Sequential(*blocks)
        self.feature_shape = (c_in, size, size)  # (C, H, W) of the last feature map
        flat = c_in * size * size
        # the dropout layer is always there (p=0 is the identity), so that the state dict's names do not
        # depend on it and a pretrained encoder loads into one with another dropout
        head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
        if latent_dim is not None:
            head.append(nn.Linear(flat, latent_dim))
            if latent_activation:
                head.append(make_activation(activation))
        self.to_latent = nn.Sequential(*head)
        self.latent_dim = latent_dim if latent_dim is not None else flat
        self.in_channels, self.input_size = in_channels, input_size
        self.residual = residual
        self.channels_last = channels_last
        if channels_last:
            self.features.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:  # no copy for one-channel images: NCHW and NHWC are then the same bytes
            x = x.contiguous(memory_format=torch.channels_last)
        return self.to_latent(self.features(x))  # (B, C, H, W) -> (B, latent_dim)


def identity_or_projection(c_in: int, c_out: int, stride: int, batch_norm: bool) -> nn.Module:
    """The skip branch of a residual block: ``x`` itself, or a 1x1 conv (+ batch norm) when the shape changes."""
    if c_in == c_out and stride == 1:
        return nn.Identity()
    proj = [("conv", nn.Conv2d(c_in, c_out, 1, stride, bias=not batch_norm))]
    if batch_norm:
        proj.append(("norm", nn.BatchNorm2d(c_out)))
    return nn.Sequential(OrderedDict(proj))


class ResidualBlock(nn.Module):
    """``tail(body(x) + skip(x))``: ``body`` is the plain block's conv [-> pool] [-> norm], ``tail`` its activation
    [-> pool]; ``skip_pool`` pools the skip too when the body pools before the sum (``pool_first``)."""

    def __init__(self, layers: OrderedDict[str, nn.Module], skip: nn.Module, skip_pool: nn.Module | None) -> None:
        super().__init__()
        names = list(layers)
        cut = names.index("act")
        self.body = nn.Sequential(OrderedDict((n, layers[n]) for n in names[:cut]))
        self.skip = nn.Sequential(skip, skip_pool) if skip_pool is not None else skip
        self.tail = nn.Sequential(OrderedDict((n, layers[n]) for n in names[cut:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.skip(x)  # first, so that `dlmnist summarize` follows the body's receptive field to the sum
        return self.tail(self.body(x) + shortcut)  # (B, C, H, W)

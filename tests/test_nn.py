import pytest
import torch

from dlmnist.nn import MLP, ConvEncoder, conv_out


@pytest.mark.parametrize(
    "size, k, s, p, d, out", [(28, 5, 1, 0, 1, 24), (28, 3, 1, 1, 1, 28), (28, 3, 2, 1, 1, 14), (32, 7, 1, 3, 2, 26)]
)
def test_conv_out(size, k, s, p, d, out):
    assert conv_out(size, k, s, p, d) == out
    conv = torch.nn.Conv2d(1, 1, k, s, p, dilation=d)
    assert conv(torch.zeros(1, 1, size, size)).shape[-1] == out


def test_encoder_shapes_match_forward():
    enc = ConvEncoder(channels=[8, 16, 4], kernel_sizes=[5, 3, 3], paddings=[0, 1, 1], pool=[2, 2, 1], latent_dim=12)
    assert enc.feature_shape == (4, 6, 6)
    assert tuple(enc.features(torch.zeros(2, 1, 28, 28)).shape[1:]) == enc.feature_shape
    assert enc(torch.zeros(2, 1, 28, 28)).shape == (2, 12) and enc.latent_dim == 12


def test_encoder_without_latent_keeps_flat_features():
    enc = ConvEncoder(channels=[4], pool=2, latent_dim=None)
    assert enc.latent_dim == 4 * 14 * 14 and enc(torch.zeros(1, 1, 28, 28)).shape == (1, 784)


def test_stack_shrinking_to_zero_names_the_layer():
    with pytest.raises(ValueError, match=r"layer 3 \(conv 5x5.*shrinks its 4x4 input to 0x0"):
        ConvEncoder(channels=[8, 8, 8], kernel_sizes=5, paddings=0, pool=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"dropout": 1.5}, "dropout"),
        ({"channels": []}, "channels"),
        ({"channels": [4, 4], "kernel_sizes": [3]}, "kernel_sizes has 1 entries but there are 2 layers"),
        ({"activation": "swishy"}, "activation"),
    ],
)
def test_encoder_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvEncoder(**kwargs)


def test_mlp_layers():
    mlp = MLP(16, [8, 4], 3, dropout=0.1)
    assert mlp(torch.zeros(5, 16)).shape == (5, 3)
    assert [m.out_features for m in mlp if isinstance(m, torch.nn.Linear)] == [8, 4, 3]


def test_decoders_map_latent_to_images():
    from dlmnist.nn import ConvDecoder, DenseDecoder, DenseEncoder

    z = torch.randn(3, 12)
    img = ConvDecoder(12, [16, 8], feature_size=7)(z)
    assert img.shape == (3, 1, 28, 28) and img.min() >= 0 and img.max() <= 1
    assert DenseDecoder(12, [32])(z).shape == (3, 1, 28, 28)
    assert DenseEncoder(12, [32])(img).shape == (3, 12)
    with pytest.raises(ValueError, match="feature_size 5 doubled by 2 layers gives 20, not output_size 28"):
        ConvDecoder(12, [16, 8], feature_size=5)


def test_pool_first_moves_pooling_before_norm_and_keeps_shapes():
    plain = ConvEncoder(channels=[8, 16], pool=2, latent_dim=10)
    fast = ConvEncoder(channels=[8, 16], pool=2, latent_dim=10, pool_first=True)
    assert [type(m).__name__ for m in fast.features[0]] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert [type(m).__name__ for m in plain.features[0]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert fast.feature_shape == plain.feature_shape
    fast.load_state_dict(plain.state_dict())  # same parameters, only the order differs
    x = torch.randn(4, 1, 28, 28)
    assert fast(x).shape == plain(x).shape == (4, 10)


def test_channels_last_encoder_computes_the_same_function_with_the_same_state_dict():
    torch.manual_seed(0)
    plain = ConvEncoder(channels=[8, 16], kernel_sizes=[5, 3], pool_first=True, latent_dim=10).eval()
    fast = ConvEncoder(channels=[8, 16], kernel_sizes=[5, 3], pool_first=True, latent_dim=10, channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())  # a checkpoint loads either way
    weight = fast.features[1].conv.weight  # (16, 8, 3, 3); with one input channel both layouts coincide
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(fast(x), plain(x), atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), plain.state_dict().values()))

"""Self-attention in NumPy and PyTorch agree, and the ViT's multi-head layer is built on the same function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlmnist.nn import MultiHeadSelfAttention, PatchEmbedding, VisionTransformer
from dlmnist.nn.self_attention import scaled_dot_product_attention
from dlmnist.reference.attention_by_hand import self_attention_numpy, self_attention_torch


def test_numpy_and_torch_self_attention_agree():
    rng = np.random.default_rng(0)
    n, d_in, d_k, d_v = 5, 8, 4, 3
    x, w_q, w_k, w_v = (rng.normal(size=s) for s in [(n, d_in), (d_in, d_k), (d_in, d_k), (d_in, d_v)])
    out_np, w_np = self_attention_numpy(x, w_q, w_k, w_v)
    out_t, w_t = self_attention_torch(*(torch.from_numpy(a) for a in (x, w_q, w_k, w_v)))
    assert out_np.shape == (n, d_v) and w_np.shape == (n, n)
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w_t.numpy(), w_np, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w_np.sum(axis=1), 1.0)


def test_attention_by_hand():
    # two tokens, identity weights: scores = x x^T / sqrt(2) = [[1, 0], [0, 1]] / sqrt(2)
    x = np.eye(2)
    out, w = self_attention_numpy(x, np.eye(2), np.eye(2), np.eye(2))
    a = np.exp(1 / np.sqrt(2)) / (np.exp(1 / np.sqrt(2)) + 1.0)
    np.testing.assert_allclose(w, [[a, 1 - a], [1 - a, a]])
    np.testing.assert_allclose(out, w)  # V = x = I


def test_multi_head_layer_matches_per_head_attention_and_torch_sdpa():
    torch.manual_seed(0)
    dim, heads, n = 12, 3, 7
    mha = MultiHeadSelfAttention(dim, heads).double()
    x = torch.randn(2, n, dim, dtype=torch.float64)
    out, weights = mha(x)
    assert out.shape == (2, n, dim) and weights.shape == (2, heads, n, n)
    w_q, w_k, w_v = mha.qkv.weight.T.split(dim, dim=1)  # (dim, dim) each; head h uses columns h*4:(h+1)*4
    b_q, b_k, b_v = mha.qkv.bias.split(dim)
    hd = dim // heads
    for h in range(heads):
        s = slice(h * hd, (h + 1) * hd)
        q, k, v = x @ w_q[:, s] + b_q[s], x @ w_k[:, s] + b_k[s], x @ w_v[:, s] + b_v[s]
        ref_out, ref_w = scaled_dot_product_attention(q, k, v)
        torch.testing.assert_close(weights[:, h], ref_w)
        torch.testing.assert_close(ref_out, torch.nn.functional.scaled_dot_product_attention(q, k, v))


def test_patch_size_must_divide_28():
    with pytest.raises(ValueError, match="patch_size must divide"):
        PatchEmbedding(5, 16)
    assert PatchEmbedding(7, 16)(torch.zeros(2, 1, 28, 28)).shape == (2, 16, 16)


@pytest.mark.parametrize("pool, tokens", [("cls", 50), ("mean", 49)])
def test_vision_transformer_attention_maps(pool, tokens):
    vit = VisionTransformer(patch_size=4, dim=16, depth=2, heads=2, mlp_dim=32, pool=pool).eval()
    x = torch.randn(3, 1, 28, 28)
    assert vit(x).shape == (3, 16) and vit.latent_dim == 16
    maps = vit.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (3, 2, tokens, tokens)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(3, 2, tokens))


def test_conv_stem_makes_tokens_from_local_features():
    """A hybrid ViT: the stem's 3x3 convolutions run before the patch embedding; the token grid is unchanged, the
    patch projection takes the stem's channels, and a token depends on pixels just outside its patch."""
    torch.manual_seed(0)
    vit = VisionTransformer(patch_size=7, dim=16, depth=1, heads=2, mlp_dim=32, stem=[8, 12]).eval()
    assert vit.patches.proj.in_channels == 12 and vit.patches.grid == 4
    x = torch.zeros(1, 1, 28, 28, requires_grad=True)
    vit.patches(vit.stem(x))[0, 0].sum().backward()  # the first patch's token: pixels 0-6 x 0-6
    seen = x.grad[0, 0].abs() > 0
    assert seen[:7, :7].any() and seen[7:9, :7].any() and not seen[9:, :].any()  # 2 px beyond (two 3x3 convs)
    plain = VisionTransformer(patch_size=7, dim=16, depth=1, heads=2, mlp_dim=32)
    assert not any(k.startswith("stem.") for k in plain.state_dict())  # no stem: the old checkpoints' keys
    with pytest.raises(ValueError, match="stem channels"):
        VisionTransformer(stem=[8, 0])

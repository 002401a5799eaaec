"""Sequence models: nn.Embedding by hand, truncated BPTT, attention weights, digit sequences, the row RNN learning."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn as nn

from dlmnist.data import MNISTDataModule
from dlmnist.data.idx import read_idx
from dlmnist.data.sequences import digit_sequences, split_digits
from dlmnist.data.sources import TEST_IMAGES, TEST_LABELS
from dlmnist.models import Classifier, DigitSeq2Seq
from dlmnist.nn import MultiHeadSelfAttention, RowRNN
from dlmnist.nn.encoder_decoder import AdditiveAttention, DigitSeq2SeqNet
from dlmnist.reference.embedding import Embedding


@pytest.mark.parametrize("method", ["lookup", "one_hot"])
def test_reference_embedding_equals_nn_embedding_forward_and_backward(method):
    torch.manual_seed(0)
    ours, theirs = Embedding(42, 8, method=method).double(), nn.Embedding(42, 8).double()
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
    idx = torch.randint(0, 42, (2, 3, 4))  # any index shape; a repeat on purpose, and rows nobody picks
    idx[0, 0, :3] = 3
    out, ref = ours(idx), theirs(idx)
    assert out.shape == ref.shape == (2, 3, 4, 8)
    assert torch.equal(out, ref)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    assert torch.allclose(ours.weight.grad, theirs.weight.grad, rtol=0, atol=1e-12)
    unused = torch.ones(42, dtype=torch.bool)
    unused[idx.flatten()] = False
    assert unused.any() and not ours.weight.grad[unused].any()  # a row nobody picked gets no gradient


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_truncated_bptt_cuts_the_gradient_to_early_rows(cell):
    torch.manual_seed(0)
    full = RowRNN(cell=cell, hidden_size=16)
    cut = RowRNN(cell=cell, hidden_size=16, tbptt_steps=7)
    cut.load_state_dict(full.state_dict())
    x = torch.randn(3, 1, 28, 28)
    grads = {}
    for name, rnn in (("full", full), ("cut", cut)):
        xi = x.clone().requires_grad_(True)
        out = rnn(xi)
        out.square().sum().backward()
        grads[name] = (out.detach(), xi.grad[:, 0].abs().sum(dim=(0, 2)))  # gradient per row: (28,)
    assert torch.allclose(grads["full"][0], grads["cut"][0], atol=1e-6)  # the forward values are the same
    full_rows, cut_rows = grads["full"][1], grads["cut"][1]
    assert (full_rows > 0).all()  # full BPTT: every row, the first included, gets a gradient
    assert not cut_rows[:21].any() and (cut_rows[21:] > 0).all()  # k=7: only the last 7 rows


def test_additive_attention_weights_are_a_distribution_over_positions():
    torch.manual_seed(0)
    context, weights = AdditiveAttention(16)(torch.randn(4, 16), torch.randn(4, 5, 16))
    assert context.shape == (4, 16) and weights.shape == (4, 5)
    assert (weights >= 0).all() and torch.allclose(weights.sum(-1), torch.ones(4))


def test_masked_self_attention_rows_sum_to_one_and_masked_keys_get_nothing():
    torch.manual_seed(0)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    _, weights = MultiHeadSelfAttention(16, 4)(torch.randn(2, 6, 16), mask)
    assert weights.shape == (2, 4, 6, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 6))
    assert not weights[..., ~mask].any()


@pytest.mark.parametrize("attention", ["additive", "self"])
def test_decoder_attention_maps_have_one_row_per_step_over_the_digits(attention):
    torch.manual_seed(0)
    net = DigitSeq2SeqNet(attention, hidden_size=16, embed_dim=8, channels=[4, 8], heads=2, depth=1).eval()
    x, targets = torch.randn(3, 1, 28, 5 * 28), torch.randint(0, 10, (3, 5))
    for given in (targets, None):  # teacher forcing and greedy decoding
        logits, weights = net(x, given)
        assert logits.shape == (3, 5, 10) and weights.shape == (3, 5, 5)  # (B, decoder step, encoder position)
        total = weights.sum(-1)
        if attention == "additive":
            assert torch.allclose(total, torch.ones(3, 5))
        else:  # the rest of each row's mass is on the decoder's own earlier tokens: the first step sees 1 of them
            assert (weights >= 0).all() and (total <= 1 + 1e-6).all() and (total > 0).all()
    assert net.decoder is not None and DigitSeq2SeqNet("none", 16, 8, [4, 8], 2, 1)(x)[1] is None


def test_digit_sequences_are_labelled_by_the_digits_placed(mnist_dir):
    images = read_idx(mnist_dir / "mnist" / TEST_IMAGES)[:62].unsqueeze(1)  # (62, 1, 28, 28) uint8
    labels = read_idx(mnist_dir / "mnist" / TEST_LABELS)[:62].long()
    for order in ("reversed", "sorted", "same"):
        x, target, placed = digit_sequences(images, labels, 4, order)
        assert x.shape == (15, 1, 28, 112) and target.shape == placed.shape == (15, 4)  # 2 images left over
        digits = split_digits(x)  # (15, 4, 1, 28, 28)
        for i in range(15):
            for j in range(4):
                assert torch.equal(x[i, 0, :, 28 * j : 28 * (j + 1)], images[4 * i + j, 0])  # placed left to right
                assert torch.equal(digits[i, j], images[4 * i + j]) and placed[i, j] == labels[4 * i + j]
        expected = {"reversed": placed.flip(-1), "sorted": placed.sort(-1).values, "same": placed}[order]
        assert torch.equal(target, expected)
    assert labels[:4].tolist() == [7, 2, 1, 0] and digit_sequences(images, labels, 4)[1][0].tolist() == [0, 1, 2, 7]


def test_the_sequence_model_refuses_a_batch_with_no_whole_sequence():
    model = DigitSeq2Seq(length=6, hidden_size=16, channels=[4, 8])
    with pytest.raises(ValueError, match="no sequence of 6 digits"):
        model.step((torch.randn(5, 1, 28, 28), torch.arange(5)), "val", 0)


@pytest.mark.slow  # trains (the mnist_dir fixture marks it too)
def test_the_row_rnn_learns_above_chance_in_a_short_real_training(mnist_dir, tmp_path):
    L.seed_everything(0, verbose=False)
    dm = MNISTDataModule(data_dir=str(mnist_dir), batch_size=64, train_subset=3000, val_subset=500)
    model = Classifier(RowRNN(cell="gru", hidden_size=64))
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(model, dm)
    acc = trainer.callback_metrics["val/acc"].item()
    assert acc > 0.3, acc  # chance is 0.1

"""The Python API of docs/python-api.md: every family built in Python reloads from its checkpoint alone, and
``predict_images`` takes images as users hold them and preprocesses them as the training did."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from dlmnist.data import MNISTDataModule
from dlmnist.models import GAN, VAE, AutoEncoder, Classifier, DigitSeq2Seq, StackedAutoEncoder, ViT
from dlmnist.nn import ConvDecoder, ConvEncoder, DenseDecoder, DenseEncoder, DenseStack, RowRNN

from .conftest import fit_briefly as fit


def conv_ae(**kw):
    return AutoEncoder(ConvEncoder(channels=[4, 8], latent_dim=8), ConvDecoder(latent_dim=8, channels=[8, 4]), **kw)


def dense_ae(**kw):
    return AutoEncoder(DenseEncoder(latent_dim=8, hidden=[32]), DenseDecoder(latent_dim=8, hidden=[32]), **kw)


FAMILIES = {  # name: (build, normalize, max_epochs)
    "cnn": (lambda: Classifier(ConvEncoder(channels=[4, 8], latent_dim=16)), True, 1),
    "mlp": (lambda: Classifier(DenseEncoder(latent_dim=16, hidden=[32], latent_activation="relu")), True, 1),
    "vit": (lambda: ViT(patch_size=7, dim=16, depth=1, heads=2, mlp_dim=16), True, 1),
    "rnn": (lambda: Classifier(RowRNN(cell="lstm", hidden_size=16, tbptt_steps=7)), True, 1),
    "rnn_encoder": (lambda: Classifier(RowRNN(cell="gru", hidden_size=16)), True, 1),
    "seq2seq": (lambda: DigitSeq2Seq(length=2, attention="self", hidden_size=16, channels=[4, 8], heads=2, depth=1),
                True, 1),
    "ae_dense": (dense_ae, False, 1),
    "ae_conv": (conv_ae, False, 1),
    "ae_sparse": (lambda: dense_ae(sparsity_weight=0.01), False, 1),
    "ae_denoise": (lambda: conv_ae(noise_factor=0.3), False, 1),
    "ae_contractive": (lambda: dense_ae(contractive_weight=0.1), False, 1),
    "stacked_ae": (lambda: StackedAutoEncoder(DenseStack([16]), pretrain_epochs=1, head_epochs=0, finetune_epochs=1),
                   False, 2),
    "vae": (lambda: VAE(DenseEncoder(latent_dim=16), DenseDecoder(latent_dim=4, out_activation=None), latent_dim=4),
            False, 1),
    "gan": (lambda: GAN(ConvDecoder(latent_dim=8, channels=[8, 4]), ConvEncoder(channels=[4], latent_dim=1,
                                                                               latent_activation=False), z_dim=8),
            False, 1),
}


@pytest.mark.parametrize("family", [*FAMILIES, "pretrained_encoder"])
def test_every_family_built_in_python_reloads_from_its_checkpoint_alone(family, mnist_dir, tmp_path):
    if family == "pretrained_encoder":  # a classifier whose frozen encoder starts from an autoencoder's
        ae_path = fit(conv_ae(), mnist_dir, tmp_path / "ae", normalize=False)
        model = Classifier(ConvEncoder(channels=[4, 8], latent_dim=8), encoder_checkpoint=ae_path, freeze_encoder=True)
        normalize, epochs = False, 1
    else:
        build, normalize, epochs = FAMILIES[family]
        model = build()
    path = fit(model, mnist_dir, tmp_path, normalize, epochs)
    again = type(model).load_from_checkpoint(path)
    assert again.input_normalization == model.input_normalization
    x = torch.rand(8, 1, 28, 28)
    model.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert torch.equal(again.predict_images(x), model.predict_images(x))
    assert type(L.LightningModule.load_from_checkpoint(path)) is type(model)  # the class is in the checkpoint too


@pytest.mark.parametrize("normalize", [True, False])
def test_predict_images_of_raw_uint8_test_images_equals_the_data_modules_batches(normalize, mnist_dir, tmp_path):
    from dlmnist.data.idx import read_idx
    from dlmnist.data.sources import TEST_IMAGES

    model = Classifier(ConvEncoder(channels=[4, 8], latent_dim=16))
    path = fit(model, mnist_dir, tmp_path, normalize)
    model = Classifier.load_from_checkpoint(path).eval()
    dm = MNISTDataModule(data_dir=str(mnist_dir), normalize=normalize, eval_batch_size=2000)
    dm.setup("test")
    with torch.no_grad():
        through_data_module = torch.cat([model(x).argmax(-1) for x, _ in dm.test_dataloader()])
    raw = read_idx(mnist_dir / "mnist" / TEST_IMAGES)  # (10000, 28, 28) uint8, as in the file
    assert raw.dtype == torch.uint8
    predicted = model.predict_images(raw)
    assert torch.equal(predicted, through_data_module)  # so the raw images reach the model's test accuracy
    assert (predicted == dm.test_y).float().mean() == (through_data_module == dm.test_y).float().mean()


def test_predict_images_takes_arrays_tensors_and_pil_images_alike():
    from PIL import Image

    model = Classifier(ConvEncoder(channels=[4], latent_dim=8)).eval()
    raw = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    expected = model.predict_images(torch.from_numpy(raw))
    assert expected.shape == (5,) and expected.dtype == torch.int64
    for images in (raw, raw[:, None], torch.from_numpy(raw).float() / 255, [Image.fromarray(a) for a in raw]):
        assert torch.equal(model.predict_images(images), expected)
    assert torch.equal(model.predict_images(Image.fromarray(raw[0])), expected[:1])
    with pytest.raises(ValueError, match=r"float images must hold pixels in \[0, 1\]"):
        model.predict_images(torch.from_numpy(raw).float())
    with pytest.raises(ValueError, match="must have shape"):
        model.predict_images(torch.zeros(2, 3, 28, 28))
    ae = conv_ae().eval()
    recon = ae.predict_images(raw)
    with torch.no_grad():
        assert torch.equal(recon, ae(torch.from_numpy(raw)[:, None].float() / 255))  # pixels in [0, 1] untouched
    assert model.training is False and ae.training is False


@pytest.mark.slow  # a fresh process that imports every module
def test_importing_every_module_leaves_matplotlibs_backend_alone():
    import subprocess
    import sys

    code = """
import importlib, pkgutil, matplotlib
matplotlib.use("svg")
import dlmnist
for m in pkgutil.walk_packages(dlmnist.__path__, "dlmnist."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)
from dlmnist.utils.figures import confusion_figure, figure_png
import torch
figure_png(confusion_figure(torch.eye(3, dtype=torch.long)))  # drawing a figure leaves it alone too
print(matplotlib.get_backend())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1].lower() == "svg"

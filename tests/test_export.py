"""``dlmnist export``: every format gives the PyTorch model's outputs, preprocessing included (ONNX through
onnxruntime); unsupported parts and a missing extra are one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from dlmnist.models import VAE, AutoEncoder, Classifier, ViT
from dlmnist.nn import ConvDecoder, ConvEncoder, DenseDecoder, DenseEncoder

from .conftest import fit_briefly, run_cli

FORMATS = ("onnx", "torchscript", "exported_program")
MODELS = {  # name: (build, normalize)
    "cnn": (lambda: Classifier(ConvEncoder(channels=[4, 8], latent_dim=16)), True),
    "ae_conv": (lambda: AutoEncoder(ConvEncoder(channels=[4, 8], latent_dim=8), ConvDecoder(8, channels=[8, 4])),
                False),
    "vit": (lambda: ViT(patch_size=7, dim=16, depth=1, heads=2, mlp_dim=16), True),
    "vae": (lambda: VAE(DenseEncoder(latent_dim=16), DenseDecoder(latent_dim=4, out_activation=None), latent_dim=4),
            False),
}
CASES = [("cnn", "model"), ("cnn", "encoder"), ("ae_conv", "model"), ("ae_conv", "encoder"), ("ae_conv", "decoder"),
         ("vit", "model"), ("vae", "decoder")]


@pytest.fixture(scope="module")
def checkpoints(mnist_dir, tmp_path_factory):
    """A briefly trained checkpoint of each model, built in Python."""
    root = tmp_path_factory.mktemp("export")
    return {name: fit_briefly(build(), mnist_dir, root / name, norm) for name, (build, norm) in MODELS.items()}


def run_exported(fmt: str, path, x: torch.Tensor) -> torch.Tensor:
    if fmt == "torchscript":
        return torch.jit.load(str(path))(x)
    if fmt == "exported_program":
        return torch.export.load(path).module()(x)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,part", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_each_format_gives_the_pytorch_models_outputs(name, part, fmt, checkpoints, tmp_path, capsys):
    model_cls = {"cnn": Classifier, "ae_conv": AutoEncoder, "vit": ViT, "vae": VAE}[name]
    model = model_cls.load_from_checkpoint(checkpoints[name]).eval()
    out = tmp_path / f"{name}.{part}.{fmt}"
    with pytest.raises(SystemExit) as e:
        run_cli("export", "--ckpt_path", checkpoints[name], "--format", fmt, "--part", part, "--out", str(out))
    assert e.value.code == 0 and out.stat().st_size > 0
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if part == "decoder":  # codes in, images out
            x = torch.randn(5, 8 if name == "ae_conv" else 4, generator=g)
            expected = model.decode(x)
        else:  # raw uint8 images in: the preprocessing is in the graph
            x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8, generator=g)  # a batch size not exported
            normalised = model.normalize(x.float() / 255)
            expected = model.codes(normalised) if part == "encoder" else model(normalised)
    torch.testing.assert_close(run_exported(fmt, out, x), expected, atol=1e-5, rtol=1e-5)
    if part == "model" and name == "cnn":
        assert torch.equal(run_exported(fmt, out, x).argmax(-1), model.predict_images(x))


def test_onnx_metadata_states_the_preprocessing_and_the_default_file_lies_beside_the_checkpoint(checkpoints):
    import onnx

    from dlmnist.export import export

    path = export(checkpoints["cnn"], "onnx")
    assert path.parent == Path(checkpoints["cnn"]).parent and path.suffix == ".onnx"
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["dlmnist_model"] == "Classifier" and "uint8" in meta["input"]
    assert "(x - 0.1307) / 0.3081" in meta["preprocessing"]
    extra = {"dlmnist.json": ""}
    torch.jit.load(str(export(checkpoints["cnn"], "torchscript")), _extra_files=extra)
    assert json.loads(extra["dlmnist.json"])["preprocessing"] == meta["preprocessing"]


@pytest.mark.parametrize("name,part,message", [
    ("cnn", "decoder", "--part decoder of Classifier cannot be exported: Classifier has no decoder"),
])
def test_an_unsupported_part_is_a_one_line_error(name, part, message, checkpoints, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("export", "--ckpt_path", checkpoints[name], "--format", "onnx", "--part", part)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == f"dlmnist export: error: {message}\n"


def test_without_the_export_extra_onnx_is_a_one_line_error(checkpoints, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if `pip install dlmnist[export]` had not run
    with pytest.raises(SystemExit) as e:
        run_cli("export", "--ckpt_path", checkpoints["cnn"], "--format", "onnx")
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err == "dlmnist export: error: ONNX export needs onnxscript: pip install 'dlmnist[export]'\n"


def test_a_file_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "notes.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(SystemExit) as e:
        run_cli("export", "--ckpt_path", str(bad), "--format", "torchscript")
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"dlmnist export: error: {bad}: cannot be read as a checkpoint")

"""``dlmnist export``: a checkpoint as ONNX, TorchScript or a ``torch.export`` program, with its preprocessing inside.

The exported graph takes what a deployment holds, not what the training saw:

- ``--part model`` (default) and ``--part encoder``: ``images`` uint8 ``(N, 1, 28, 28)``, pixels 0-255 as in the
  MNIST files; the graph divides by 255 and standardises with the model's own ``input_normalization``. The model
  part gives a classifier's logits ``(N, classes)``, an autoencoder's or a VAE's reconstruction ``(N, 1, 28, 28)``
  in [0, 1], a GAN discriminator's logit ``(N,)``; the encoder part the codes ``(N, D)`` (``model.codes``: a VAE's
  posterior mean).
- ``--part decoder``: ``codes`` float32 ``(N, D)`` -> images ``(N, 1, 28, 28)`` in [0, 1] (``model.decode``: an
  autoencoder's or a VAE's decoder, a GAN's generator).

The batch size is free in every format. ONNX files carry the same facts in their metadata (``metadata_props``).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from dlmnist.compat import lightning_export_mode

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "exported_program": ".pt2"}
PARTS = ("model", "encoder", "decoder")


class ExportError(ValueError):
    """The checkpoint or part cannot be exported (one line, for the command line)."""


class Part(nn.Module):
    """One part of a trained model behind the preprocessing a deployment needs (see the module docstring)."""

    def __init__(self, model: nn.Module, part: str) -> None:
        super().__init__()
        self.model, self.part = model, part
        self.mean, self.std = (float(v) for v in model.input_normalization)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.part == "decoder":
            return self.model.decode(x)  # (N, D) -> (N, 1, 28, 28)
        pixels = x.float() / 255.0  # (N, 1, 28, 28) uint8 -> [0, 1], as MNISTDataModule converts them
        x = (pixels - self.mean) / self.std
        return self.model.codes(x) if self.part == "encoder" else self.model(x)


def load_model(ckpt_path: Path) -> nn.Module:
    """Any dlmnist model from its checkpoint alone, on the CPU, in eval mode."""
    import lightning as L

    import dlmnist.models  # noqa: F401 (the classes a checkpoint's _class_path may name)

    if not ckpt_path.is_file():
        raise ExportError(f"{ckpt_path}: no such checkpoint")
    try:
        hparams = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    except Exception as e:  # not a checkpoint, truncated, ...
        raise ExportError(f"{ckpt_path}: cannot be read as a checkpoint ({type(e).__name__})") from e
    if "_class_path" not in hparams:
        raise ExportError(
            f"{ckpt_path}: the checkpoint does not name its model class (a model with a network of your own "
            "reloads in Python only, given the network again)"
        )
    model = L.LightningModule.load_from_checkpoint(ckpt_path, map_location="cpu").eval()
    return model.to(memory_format=torch.contiguous_format)  # channels-last weights (a CPU speed-up) as plain ones


def part_of(model: nn.Module, part: str) -> tuple[Part, torch.Tensor]:
    """The part to export and an example input (batch of 2); an :class:`ExportError` for an unsupported part."""
    wrapped = Part(model, part).eval()
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            if part != "decoder":
                wrapped(images)
                return wrapped, images
            codes = torch.randn(2, code_size(model), generator=torch.Generator().manual_seed(0))
            wrapped(codes)
            return wrapped, codes
    except (TypeError, AttributeError) as e:
        raise ExportError(f"--part {part} of {type(model).__name__} cannot be exported: {e}") from e


def code_size(model: nn.Module) -> int:
    """Length of the codes the decoder takes."""
    for key in ("latent_dim", "z_dim"):
        if key in model.hparams:
            return int(model.hparams[key])
    with torch.no_grad():
        return int(model.codes(torch.zeros(1, 1, 28, 28)).shape[-1])


def metadata(model: nn.Module, part: str) -> dict[str, str]:
    mean, std = model.input_normalization
    data = {"dlmnist_model": type(model).__name__, "dlmnist_part": part}
    if part == "decoder":
        data["input"] = "codes: float32 (N, D)"
    else:
        data["input"] = "images: uint8 (N, 1, 28, 28), pixels 0-255"
        data["preprocessing"] = f"inside the graph: pixels / 255, then (x - {mean}) / {std}"
    return data


def export(ckpt_path: Path, fmt: str, out: Path | None = None, part: str = "model") -> Path:
    """Write ``part`` of the checkpoint's model in format ``fmt``; return the file (default: beside the checkpoint)."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if part not in PARTS:
        raise ExportError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if fmt == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install 'dlmnist[export]'")
    model = load_model(Path(ckpt_path))
    wrapped, example = part_of(model, part)
    suffix = FORMATS[fmt] if part == "model" else f".{part}{FORMATS[fmt]}"
    out = Path(out) if out is not None else Path(ckpt_path).with_suffix(suffix)
    out.parent.mkdir(parents=True, exist_ok=True)
    name = "codes" if part == "decoder" else "images"
    batch = torch.export.Dim("batch")
    with torch.no_grad(), lightning_export_mode():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch.jit is deprecated upstream; the format is still asked for
                warnings.simplefilter("ignore", FutureWarning)
                # a size read as a Python number (the ViT's sqrt(head width)) is a constant of the architecture:
                # tests/test_export.py checks every traced part on a batch size other than the traced one
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(wrapped, example)
                torch.jit.save(traced, str(out), _extra_files={"dlmnist.json": json.dumps(metadata(model, part))})
        elif fmt == "exported_program":
            program = torch.export.export(wrapped, (example,), dynamic_shapes={"x": {0: batch}})
            buffer = io.BytesIO()  # through a buffer: torch warns about a file name that does not end in .pt2
            torch.export.save(program, buffer, extra_files={"dlmnist.json": json.dumps(metadata(model, part))})
            out.write_bytes(buffer.getvalue())
        else:
            write_onnx(wrapped, example, out, name, metadata(model, part), batch)
    return out


def write_onnx(wrapped: nn.Module, example: torch.Tensor, out: Path, name: str, meta: dict, batch) -> None:
    import onnx

    program = torch.onnx.export(wrapped, (example,), input_names=[name], output_names=["output"],
                                dynamic_shapes={"x": {0: batch}}, dynamo=True, verbose=False)
    program.save(str(out))
    proto = onnx.load(str(out))
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(out))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dlmnist export", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_path", type=Path, required=True, help="checkpoint of any dlmnist model")
    parser.add_argument("--format", choices=list(FORMATS), required=True, help="file format to write")
    parser.add_argument("--out", type=Path, help="file to write (default: beside the checkpoint)")
    parser.add_argument("--part", choices=PARTS, default="model",
                        help="model (default), encoder (images -> codes) or decoder (codes -> images)")
    args = parser.parse_args(argv)
    try:
        out = export(args.ckpt_path, args.format, args.out, args.part)
    except ExportError as e:
        print(f"dlmnist export: error: {e}", file=sys.stderr)
        return 2
    print(f"written {out}")
    return 0

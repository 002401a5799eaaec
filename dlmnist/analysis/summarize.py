"""``dlmnist summarize -c CONFIG``: a model's layers, output shapes, parameters, receptive field and jump.

The model is built from the config exactly as ``dlmnist fit`` builds it (``dlmnist.config``), then walked
during a real forward pass (``dlmnist.analysis.walk``): every shape computed by the conv arithmetic is
checked against the tensor the layer returns. Exit code 0 when all agree, 1 when a shape differs, 2 when
the model cannot be built or a layer would shrink its input to nothing (named in the message).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dlmnist.analysis.walk import Summary, summarize_module
from dlmnist.cli.errors import error_reason
from dlmnist.config import model_from_config

HEADER = ("#", "layer", "type", "output", "params", "receptive field", "jump", "check")


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "-"


def _arithmetic(lines: list[str]) -> str:
    """Merge ``H: f`` and ``W: f`` when they are the same formula."""
    dims = [ln for ln in lines if ln[:3] in ("H: ", "W: ")]
    if len(dims) == 2 and dims[0][3:] == dims[1][3:]:
        lines = [f"H, W: {dims[0][3:]}", *[ln for ln in lines if ln not in dims]]
    return "; ".join(lines)


def format_summary(summary: Summary, arithmetic: bool = True) -> str:
    rf_in = "x".join("1" for _ in summary.input_shape[1:]) or "1"
    table = [HEADER, ("", "input", "", _shape(summary.input_shape), "", rf_in, "1", "")]
    checked = agree = 0
    for i, r in enumerate(summary.rows, start=1):
        if r.predicted is None:
            check = "no rule"
        else:
            checked += 1
            agree += r.predicted == r.out_shape
            check = "ok" if r.predicted == r.out_shape else f"DIFFERS: rule says {_shape(r.predicted)}"
        params = "shared" if r.params is None else f"{r.params:,}"
        table.append((str(i), r.name, r.kind, _shape(r.out_shape), params, r.rf, r.jump, check))
    widths = [max(len(row[c]) for row in table) for c in range(len(HEADER))]
    right = {0, 4}
    lines = [f"{summary.model}: {summary.ran} run on 2 inputs of shape {_shape(summary.input_shape)}", ""]
    for k, row in enumerate(table):
        cells = [cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    listed = sum(r.params or 0 for r in summary.rows)
    lines += [
        "",
        f"parameters: {summary.total_params:,} in the model ({summary.trainable_params:,} trainable), "
        f"{listed:,} in the rows above",
        f"shapes: {agree} of {checked} computed output shapes agree with the forward pass",
        "receptive field: input pixels one output sees (per spatial dim, padding included); jump: input pixels",
        "between neighbouring outputs; 'whole input' once a layer mixes all positions (fully connected, attention)",
    ]
    lines += [f"note: {r.name}: {r.note}" for r in summary.rows if r.note]
    lines += [f"note: {n}" for n in summary.notes]
    if arithmetic and any(r.arithmetic for r in summary.rows):
        lines += ["", "conv arithmetic (out = floor((W + 2P - D(K-1) - 1) / S) + 1, params = (K*K*C_in + 1) * C_out):"]
        lines += [f"  {r.name}: {_arithmetic(r.arithmetic)}" for r in summary.rows if r.arithmetic and r.params]
    return "\n".join(lines)


def _input_shape(model) -> tuple[int, ...]:
    encoder = getattr(model, "encoder", None)
    if hasattr(encoder, "in_channels") and hasattr(encoder, "input_size"):
        return (encoder.in_channels, encoder.input_size, encoder.input_size)
    return (1, 28, 28)


def _part_input_shape(model, part: str, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape one input of submodule ``part`` has when the model runs on images (e.g. a decoder: the code),
    recorded by a forward pre-hook; else ``(part.latent_dim,)`` for a module that takes a code; else the image."""
    import torch

    target = model.get_submodule(part)
    seen: list[tuple[int, ...]] = []

    def record(module, args):
        if args and torch.is_tensor(args[0]) and not seen:
            seen.append(tuple(args[0].shape[1:]))

    handle = target.register_forward_pre_hook(record)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, *image_shape))
    except Exception:  # noqa: BLE001 (a forward that wants more than an image: use what the part says)
        pass
    finally:
        handle.remove()
    latent = getattr(target, "latent_dim", None)
    return seen[0] if seen else ((latent,) if isinstance(latent, int) else image_shape)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dlmnist summarize", description="Layer-by-layer shapes, parameters, receptive field and jump."
    )
    parser.add_argument("-c", "--config", action="append", required=True, help="config file(s), merged in order")
    parser.add_argument(
        "--input_shape",
        type=int,
        nargs="+",
        help="C H W of one input (default: the encoder's; with --part: what it receives)",
    )
    parser.add_argument("--part", help="summarize only this submodule, e.g. encoder (default: the whole model)")
    parser.add_argument("--no_arithmetic", action="store_true", help="leave out the conv arithmetic lines")
    parser.epilog = "Any other --key=value is an override, as for dlmnist fit (e.g. --model.head_hidden=[32])."
    args, overrides = parser.parse_known_args(argv)
    if stray := [o for o in overrides if not o.startswith("--")]:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    try:
        model = model_from_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as e:
        print(f"dlmnist summarize: error: {error_reason(e)}", file=sys.stderr)
        return 2
    shape = tuple(args.input_shape) if args.input_shape else _input_shape(model)
    if args.part and not args.input_shape:
        try:
            shape = _part_input_shape(model, args.part, shape)
        except AttributeError:
            print(f"dlmnist summarize: error: the model has no submodule {args.part!r}", file=sys.stderr)
            return 2
    try:
        summary = summarize_module(model, shape, args.part)
    except Exception as e:  # a model whose forward wants more than an image: fall back to its encoder
        if args.part or not hasattr(model, "encoder"):
            print(f"dlmnist summarize: error: the forward pass failed: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        print(f"model(x) failed ({type(e).__name__}: {e}); summarizing model.encoder instead\n")
        return main([*(sys.argv[1:] if argv is None else argv), "--part", "encoder"])
    print(format_summary(summary, arithmetic=not args.no_arithmetic))
    if summary.error:
        print(f"dlmnist summarize: error: {summary.error}", file=sys.stderr)
        return 2
    return 0 if all(r.predicted in (None, r.out_shape) for r in summary.rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Walk the layers of a model during a real forward pass: shapes, parameters, receptive field and jump.

Every layer (each leaf module, and
``nn.MultiheadAttention`` as one unit) that the forward pass runs becomes a row, in the order it runs:
output shape, parameters, receptive field and jump (in input pixels). Shapes are computed from each
layer's settings by the conv arithmetic of :mod:`dlmnist.analysis.conv_arithmetic` *before* the layer runs, then
compared with the tensor the layer really returns. A layer that would shrink its input to nothing is
reported by name before it runs; layer types without a rule are listed, with the shape the forward gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from dlmnist.analysis.conv_arithmetic import Field, step
from dlmnist.analysis.geometry import Prediction, Shape, predict

ATOMIC = (nn.MultiheadAttention,)  # containers whose forward does its own work: one row, not their children


class ShrinkError(ValueError):
    """A layer whose output would have no pixels left."""


@dataclass
class Row:
    name: str
    kind: str
    out_shape: Shape
    predicted: Shape | None
    params: int | None  # None: a module already listed (called again)
    rf: str
    jump: str
    arithmetic: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Summary:
    model: str
    input_shape: Shape
    ran: str  # what ran: "model" or "model.encoder"
    rows: list[Row]
    total_params: int
    trainable_params: int
    notes: list[str]
    error: str = ""


# Receptive field state of a tensor: "all", "unknown", or one Field per spatial dimension.
State = object


def _fmt_state(state: State) -> tuple[str, str]:
    if state == "all":
        return "whole input", "-"
    if state == "unknown" or not state:
        return "?", "?"
    rf, jump = [f.rf for f in state], [f.jump for f in state]
    fmt = lambda v: "x".join(f"{x:g}" for x in v) if len(set(v)) > 1 else f"{v[0]:g}"  # noqa: E731
    return "x".join(str(r) for r in rf), fmt(jump)


def _advance(state: State, pred: Prediction) -> State:
    if pred.rf in ("all", "unknown") or state in ("all", "unknown"):
        return pred.rf if pred.rf in ("all", "unknown") else state
    if pred.rf == "same":
        return state
    if len(state) != len(pred.layers):
        return "unknown"
    if pred.rf == "windows":
        return [step(f, layer) for f, layer in zip(state, pred.layers)]
    # transposed conv: jump shrinks by the stride; an output sees at most floor((span - 1) / S) + 1 inputs
    return [
        Field(f.size, f.rf + ((la.span - 1) // la.stride) * f.jump, f.jump / la.stride)
        for f, la in zip(state, pred.layers)
    ]


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return next((v for v in value if isinstance(v, torch.Tensor)), None)
    return None


def _units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    units, skip = [], None
    for name, module in model.named_modules():
        if skip is not None and name.startswith(skip):
            continue
        if isinstance(module, ATOMIC):
            units.append((name, module))
            skip = f"{name}."
        elif not list(module.children()):
            units.append((name, module))
    return units


def summarize_module(model: nn.Module, input_shape: Shape = (1, 28, 28), part: str | None = None) -> Summary:
    """Run ``model`` (or its submodule ``part``, e.g. "encoder") on zeros of ``input_shape`` and tabulate."""
    target = model.get_submodule(part) if part else model
    dtype = next((p.dtype for p in target.parameters() if p.is_floating_point()), torch.get_default_dtype())
    x = torch.zeros(2, *input_shape, dtype=dtype)  # (2, C, H, W): a batch of two zero images
    rows: list[Row] = []
    states: dict[int, tuple[torch.Tensor, State]] = {id(x): (x, [Field(n) for n in input_shape[1:]])}
    last: list[State] = [states[id(x)][1]]
    seen: set[int] = set()
    pending: dict[int, tuple[Prediction, torch.Tensor]] = {}

    def pre_hook(name):
        def hook(module, args, kwargs=None):
            inp = _first_tensor(args) if args else _first_tensor(list((kwargs or {}).values()))
            if inp is None:
                return
            pred = predict(module, tuple(inp.shape[1:]))
            if pred.shape is not None and min(pred.shape, default=1) < 1:
                raise ShrinkError(
                    f"layer {name} ({pred.kind}) shrinks its {'x'.join(map(str, inp.shape[1:]))} input to "
                    f"{'x'.join(str(max(s, 0)) for s in pred.shape)}: {'; '.join(pred.arithmetic[:2])}"
                )
            pending[id(module)] = (pred, inp)

        return hook

    def post_hook(name):
        def hook(module, args, output):
            out = _first_tensor(output)
            if out is None or id(module) not in pending:
                return
            pred, inp = pending.pop(id(module))
            known = states.get(id(inp))
            note = "" if known is not None else "input made outside a layer (by a parent's forward)"
            state = _advance(known[1] if known is not None else last[0], pred)
            states[id(out)] = (out, state)  # keep the tensor alive so that its id is not reused
            last[0] = state
            rf, jump = _fmt_state(state)
            params = None if id(module) in seen else sum(p.numel() for p in module.parameters())
            seen.add(id(module))
            if pred.shape is None:
                note = f"no rule for {type(module).__name__}: shape from the forward pass, receptive field not tracked"
            rows.append(Row(name, pred.kind, tuple(out.shape[1:]), pred.shape, params, rf, jump, pred.arithmetic, note))

        return hook

    handles = []
    for name, module in _units(target):
        full = f"{part}.{name}" if part else name
        handles.append(module.register_forward_pre_hook(pre_hook(full), with_kwargs=True))
        handles.append(module.register_forward_hook(post_hook(full)))
    error = ""
    was_training = target.training
    target.eval()
    try:
        with torch.no_grad():
            target(x)
    except ShrinkError as e:
        error = str(e)
    finally:
        for h in handles:
            h.remove()
        target.train(was_training)
    return _summary(model, target, input_shape, part, rows, seen, error)


def spatial_receptive_field(summary: Summary) -> tuple[str, str] | None:
    """``(receptive field, jump)`` of the last layer that still has spatial positions (e.g. "12x12", "4"),
    i.e. what one feature sees before a fully connected layer mixes them all. None when no layer has one."""
    found = None
    for row in summary.rows:
        if row.rf in ("whole input", "?"):
            break
        found = (row.rf, row.jump)
    return found


def _summary(model, target, input_shape, part, rows, seen, error) -> Summary:
    notes = []
    unused = [n for n, m in _units(target) if id(m) not in seen and sum(p.numel() for p in m.parameters())]
    if unused and not error:
        notes.append(f"layers with parameters that this forward pass does not run: {', '.join(unused)}")
    listed = {id(p) for m in target.modules() if id(m) in seen for p in m.parameters()}
    inside_unused = lambda n: any(n.startswith(u + ".") for u in unused)  # noqa: E731
    loose = [n for n, p in target.named_parameters() if id(p) not in listed and not inside_unused(n)]
    if loose and not error:
        notes.append(f"parameters held outside the listed layers: {', '.join(loose)}")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ran = f"model.{part}" if part else "model"
    return Summary(type(model).__name__, tuple(input_shape), ran, rows, total, trainable, notes, error)

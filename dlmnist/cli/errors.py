"""Short errors from jsonargparse's nested messages: which key, what was given, what is allowed."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import re


class SetupError(Exception):
    """A setting this machine or account cannot honour (no GPU, no W&B account): said in one line, exit 2."""


# Kept (text, not structure): jsonargparse 4.53 raises plain TypeError/ValueError/NSKeyError; the key path exists only
# in the nested message, and a Union failure chains only the first subtype's exception, the others' as text.
def error_reason(error: Exception) -> str:
    """One or two readable lines out of a jsonargparse error: which key, what was given, what is allowed.

    jsonargparse nests its messages (``Parser key "model"`` > ``Problem with given class_path ...`` >
    ``Parser key "lr"`` > ``Expected a <class 'float'>``) and, for a class argument, lists every Union subtype
    it tried with a dump of the given value. This walks that tree and keeps the reason: a model's own
    ValueError message ("latent_dim must be a positive integer..."), ``model.lr: expected float, got 'abc'``,
    an unknown key with the closest valid name, an unknown class with the classes that exist.
    Other messages pass as they are.
    """
    text = str(error).rstrip()
    if "Union subtypes" not in text and "Parser key" not in text and "class_path" not in text:
        return text
    return _explain(_dedent(text.splitlines()), [], None) or text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _dedent(lines: list[str]) -> list[str]:
    lines = [ln.rstrip() for ln in lines if ln.strip()]
    cut = min((_indent(ln) for ln in lines), default=0)
    return [ln[cut:] for ln in lines]


def _block(lines: list[str], i: int) -> list[str]:
    """The lines indented below line ``i``."""
    out = []
    for ln in lines[i + 1 :]:
        if _indent(ln) <= _indent(lines[i]):
            break
        out.append(ln)
    return _dedent(out)


def _explain(lines: list[str], keys: list[str], cls: str | None) -> str:
    if not lines:
        return ""
    head = lines[0].strip()
    where = ".".join(keys)
    prefix = f"{where}: " if where else ""
    if m := re.fullmatch(r'Parser key "([^"]+)":?', head):
        return _explain(_dedent(lines[1:]), [*keys, m.group(1)], cls)
    if m := re.fullmatch(r"(?:- )?Problem with given class_path '([^']+)':?", head):
        return _explain(_block(lines, 0), keys, m.group(1))
    if m := re.fullmatch(r"Option '([^']+)' is not accepted", head):
        return f"{'.'.join([*keys, m.group(1)])}: " + _unknown_key(m.group(1), cls)
    if m := re.fullmatch(r"Expected a <class '(?:[\w.]+\.)?(\w+)'>\. Got value: (.*)", head):
        return f"{prefix}expected {m.group(1)}, got {m.group(2)!r}"
    if cls and re.match(r"module '[\w.]+' has no attribute|No module named|Import path", head):
        return f"{'.'.join([*keys, 'class_path'])}: unknown class '{cls}'; " + _known_classes(cls, keys)
    if head.startswith("Does not validate against any of the Union subtypes"):
        items = [(i, ln.strip()[2:]) for i, ln in enumerate(lines) if ln.lstrip().startswith("- ")]
        for i, item in items:  # a class that was tried and refused: its reason
            if item.startswith("Problem with given class_path"):
                return _explain([item, *(" " * 2 + ln for ln in _block(lines, i))], keys, cls)
            if m := re.fullmatch(r"Expected a dot import path string: (.*)", item):
                return _explain(["Import path", *lines[1:]], keys, m.group(1))
        own = [item for _, item in items if not item.startswith("Expected a <class")]
        if own:  # e.g. a ValueError raised by the model, a restricted number type's refusal
            given = [ln.removeprefix("Given value:").strip() for ln in lines if ln.startswith("Given value:")]
            value = f", got {given[-1]}" if given and not any("got" in o for o in own) else ""
            return prefix + "\n".join(dict.fromkeys(own)) + value
        expected = [re.sub(r"Expected a <class '(?:[\w.]+\.)?(\w+)'>", r"\1", t) for _, t in items]
        given = [ln.strip().removeprefix("Given value:").strip() for ln in lines if "Given value:" in ln]
        return f"{prefix}expected {' or '.join(expected)}, got {given[-1] if given else '?'!r}"
    if cls and len(lines) == 1:
        return f"{prefix}{head} ({cls})"
    return prefix + "\n".join(ln.strip() for ln in lines[:2])


def _unknown_key(name: str, cls: str | None) -> str:
    """``not a key of Classifier; did you mean 'lr'? keys: ...`` from the class's constructor."""
    try:
        module, _, attr = (cls or "").rpartition(".")
        signature = inspect.signature(getattr(importlib.import_module(module), attr))
    except (ImportError, AttributeError, ValueError, TypeError):
        return "unknown key"
    params = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
    nested = [  # the fields of a dataclass argument: lr -> optim.lr
        f"{p}.{f.name}"
        for p in params
        if dataclasses.is_dataclass(default := signature.parameters[p].default)
        for f in dataclasses.fields(default)
    ]
    last = {c.rsplit(".", 1)[-1]: c for c in nested} | {c: c for c in params}
    close = difflib.get_close_matches(name, list(last), n=1)
    hint = f"did you mean '{last[close[0]]}'? " if close else ""
    return f"unknown key of {cls.rsplit('.', 1)[-1]}; {hint}keys: {', '.join(params)}"


def _known_classes(cls: str, keys: list[str]) -> str:
    """The classes one could have meant: those of ``dlmnist.models`` for ``model``, else of the module named."""
    module = "dlmnist.models" if keys[-1:] == ["model"] else cls.rpartition(".")[0]
    try:
        mod = importlib.import_module(module)
    except (ImportError, ValueError):
        return f"no module {module!r}"
    import torch

    names = getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")])
    classes = [n for n in names if inspect.isclass(c := getattr(mod, n, None)) and issubclass(c, torch.nn.Module)]
    found = sorted(n for n in classes if n != "Model")  # the base of every model is not one to train
    return f"{module} has: {', '.join(found)}"

"""``dlmnist fit -c CONFIG --help``: the model's and the data's arguments first, Lightning's trainer flags after.

LightningCLI's help lists the Trainer's ~90 flags first and shows a subclass-mode model only as
``--model.help CLASS``. Here the help of a training command starts with the arguments of the model class that
the resolved config selects (the same resolution as ``--print_config``), each with the value that config gives
it, including the arguments of the modules it receives (``--model.encoder.init_args.*``), then the data
module's, then the rest of LightningCLI's help unchanged.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Optional

from jsonargparse import ArgumentParser

SECTION = re.compile(r"\n\n(?=\S)")  # argparse help: sections start at an unindented line after a blank line


def _import(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _flat(prefix: str, values: dict[str, Any], nested: set[str]) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in values.items() if k not in nested}


def model_help(model: Optional[dict[str, Any]]) -> str:
    """The help of the resolved model's class, with the config's values as defaults ("" if none is selected)."""
    if not model or not isinstance(model.get("class_path"), str):
        return ""
    try:
        cls = _import(model["class_path"])
        init = model.get("init_args") or {}
        nested = {k: v for k, v in init.items() if isinstance(v, dict) and isinstance(v.get("class_path"), str)}
        parser = ArgumentParser(prog="dlmnist")
        parser.add_class_arguments(cls, "model", skip=set(nested), fail_untyped=False, sub_configs=True)
        defaults = _flat("model", init, set(nested))
        for name, sub in nested.items():
            parser.add_class_arguments(_import(sub["class_path"]), f"model.{name}.init_args", fail_untyped=False)
            defaults.update(_flat(f"model.{name}.init_args", sub.get("init_args") or {}, set()))
        for key, value in defaults.items():
            try:
                parser.set_defaults({key: value})
            except Exception:  # noqa: BLE001 (a value the help cannot show as a default: the class's own stays)
                pass
        text = parser.format_help()
    except Exception as e:  # noqa: BLE001 (the help must not fail: the usual errors come when parsing)
        return f"model {model['class_path']}: its arguments could not be listed ({type(e).__name__}: {e})"
    sections = SECTION.split(text)[1:]  # drop the usage
    sections = [s for s in sections if not s.startswith("options:")]
    nested_note = "".join(f", {k}: {v['class_path']}" for k, v in nested.items())
    head = f"model: {model['class_path']}{nested_note} (defaults below: the values of the given config)"
    return "\n\n".join([head, *sections]).rstrip()


def reorder(text: str, model: Optional[dict[str, Any]], usage: str) -> str:
    """LightningCLI's subcommand help with the model's arguments, then the data's, then the rest."""
    sections = SECTION.split(text.rstrip())
    description = [s for s in sections[1:2] if not s.lstrip().startswith("-") and ":\n" not in s]
    rest = sections[1 + len(description) :]
    data = [s for s in rest if "\n  --data." in s]
    trainer = [s for s in rest if "\n  --trainer." in s]
    others = [s for s in rest if s not in data and s not in trainer]
    model = [m] if (m := model_help(model)) else []
    trainer = [f"Lightning's Trainer (--trainer.*):\n{s.split(chr(10), 1)[1]}" for s in trainer]
    return "\n\n".join([usage.rstrip(), *description, *model, *data, *others, *trainer]) + "\n"

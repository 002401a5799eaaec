"""The packaged recipes (``dlmnist/configs/``): a config given by name, and ``dlmnist configs``.

A config argument is a path or a recipe's name. A path that exists always wins; otherwise the name is looked up
among the packaged recipes, with or without ``.yaml`` and with or without a leading ``configs/`` (so that
``-c cnn``, ``-c cnn.yaml``, ``-c trainer/cpu_bf16`` and ``-c configs/cnn.yaml`` all work outside the checkout).
:func:`path` is the one place that does this; the command line (:func:`dlmnist.argv.with_recipe_paths`) and the
commands that take a config file of their own (suite, report, tune, the launchers) call it. A leaf module: the
standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "configs"
SUFFIX = ".yaml"


def _packaged(name: str) -> Path | None:
    stem = name.removeprefix("./").removeprefix("configs/")
    for candidate in (stem, stem + SUFFIX):
        file = PACKAGED / candidate
        if candidate.endswith(SUFFIX) and file.is_file() and ".." not in Path(candidate).parts:
            return file
    return None


def path(name: str | os.PathLike) -> str:
    """The file a config argument means: the path itself when it is a file, else the packaged recipe of that name,
    else the argument unchanged (the caller refuses it; :func:`unknown` says why)."""
    name = str(name)
    if os.path.isfile(name):
        return name
    found = _packaged(name)
    return str(found) if found is not None else name


def exists(name: str | os.PathLike) -> bool:
    return os.path.isfile(path(name))


def names() -> list[str]:
    """Every packaged recipe's name (its path under ``configs/`` without ``.yaml``): top level first."""
    found = [str(p.relative_to(PACKAGED).with_suffix("")) for p in PACKAGED.rglob("*" + SUFFIX)]
    return sorted(found, key=lambda n: ("/" in n, n))


def unknown(name: str, what: str = "is neither a file nor a packaged recipe") -> str:
    """One line for a config argument that is neither a file nor a packaged recipe."""
    stem = str(name).removeprefix("configs/").removesuffix(SUFFIX)
    close = difflib.get_close_matches(stem, names(), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"config '{name}' {what}; {hint}`dlmnist configs` lists the recipes"


def description(file: Path, width: int = 100) -> str:
    """The first sentence of a recipe's opening comment, cut at a word to ``width`` characters."""
    lines = []
    for line in file.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = re.split(r"(?<=[.!?])\s", " ".join(lines).strip(), maxsplit=1)[0]
    return text if len(text) <= width else text[: width - 3].rsplit(" ", 1)[0] + " ..."


def listing() -> str:
    width = max(len(n) for n in names())
    return "".join(f"{n:<{width}}  {description(PACKAGED / (n + SUFFIX))}\n" for n in names())


def main(argv: list[str]) -> int:
    """``dlmnist configs``: list the packaged recipes; ``dlmnist configs show NAME``: print one."""
    p = argparse.ArgumentParser(
        prog="dlmnist configs",
        description="The packaged recipes, usable by name anywhere: dlmnist fit -c cnn -c trainer/cpu_bf16. "
        "A path that exists wins over a recipe of the same name.",
        epilog="`dlmnist fit -c NAME --print_config` prints a recipe with its includes resolved.",
    )
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list", help="(default: %(default)s)")
    p.add_argument("name", nargs="?", help="the recipe to show, e.g. cnn or trainer/cpu_bf16")
    a = p.parse_args(argv)
    if a.action == "list":
        if a.name:
            p.error("list takes no name; show NAME prints one recipe")
        sys.stdout.write(listing())
        return 0
    if not a.name:
        p.error("show needs a recipe name, e.g. dlmnist configs show cnn")
    found = _packaged(a.name)
    if found is None:
        print(f"dlmnist configs: error: {unknown(a.name, 'is not a packaged recipe')}", file=sys.stderr)
        return 2
    sys.stdout.write(found.read_text())
    return 0

"""The one reader of a raw ``dlmnist`` command line (a leaf module: the standard library and the recipe finder).

Everything else reads the resolved config (:func:`dlmnist.config.resolve`); the command line itself is read
only for what the resolved config cannot tell: which ``-c`` files were given (the run is named after the
first) and which keys the user typed (they win over a checkpoint's saved arguments).
"""

from __future__ import annotations

from dlmnist import recipes

HELP = ("-h", "--help")


def config_files(argv: list[str]) -> list[str]:
    """The files given with ``-c FILE``, ``--config FILE`` or ``--config=FILE``, in command-line order."""
    files = []
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def with_recipe_paths(argv: list[str]) -> list[str]:
    """``argv`` with every ``-c`` argument that names a packaged recipe (``-c cnn``) replaced by its file."""
    out = list(argv)
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            out[i + 1] = recipes.path(argv[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + recipes.path(arg.split("=", 1)[1])
    return out


def given_keys(argv: list[str], section: str) -> list[str]:
    """The ``--<section>.*`` keys typed on the command line, e.g. ``["model.nll_samples"]``."""
    return sorted({a[2:].split("=", 1)[0] for a in argv if a.startswith(f"--{section}.")})


def wants_help(argv: list[str]) -> bool:
    return any(a in HELP for a in argv)


def without_help(argv: list[str]) -> list[str]:
    return [a for a in argv if a not in HELP]

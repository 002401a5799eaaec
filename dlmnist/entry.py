"""Entry point of the ``dlmnist`` command: dispatch before importing anything heavy.

Importing Lightning costs seconds (it pulls in torchmetrics, which imports torchvision, torch._dynamo and
scipy.signal), so this module imports nothing but the standard library: the top-level ``dlmnist --help``
is answered from the table below (also ``dlmnist`` alone), an unknown command or a config file that does not
exist is refused here, the extra commands import only what they use, and everything else goes to the
LightningCLI in ``dlmnist.cli``. It imports nothing of the package but the argv reader, a leaf module.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import Any

from dlmnist import extras, recipes
from dlmnist.argv import config_files

# LightningCLI's own subcommands (tests/test_cli.py checks this list against LightningCLI.subcommands()).
LIGHTNING_COMMANDS: dict[str, str] = {
    "fit": "train a model, e.g. dlmnist fit -c cnn (a packaged recipe) or -c my.yaml",
    "validate": "one evaluation epoch over the validation set (--ckpt_path best|last|<file>)",
    "test": "one evaluation epoch over the test set; writes test_metrics.json into the run folder",
    "predict": "predictions of a checkpoint on the test set; writes predictions.csv into the run folder",
}

# Commands beside LightningCLI's: name -> ("module:function" taking argv and returning an exit code, help).
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "summarize": ("dlmnist.analysis.summarize:main", "model layer by layer: shapes, params, receptive field"),
    "suite": ("dlmnist.suite.runner:main", "run every experiment of configs/suite.yaml in dependency order"),
    "report": ("dlmnist.report.build:main", "write reports/README.md from the run folders"),
    "tune": ("dlmnist.tune.search:main", "Optuna search on the validation metric (configs/search/*.yaml)"),
    "latent": ("dlmnist.analysis.latent_report:main", "latent-space metrics and scatters of trained encoders"),
    "configs": ("dlmnist.recipes:main", "list the packaged recipes (-c NAME); dlmnist configs show NAME prints one"),
    "compare": ("dlmnist.analysis.compare:main", "inputs beside the reconstructions of several autoencoders"),
    "bernoulli-kl": ("dlmnist.reference.kl_figure:main", "figure of KL(p1||p2) and KL(p2||p1) between Bernoullis"),
    "gan-score": ("dlmnist.analysis.gan_score:main", "sample quality of a GAN under the package's own CNN"),
    "curves": ("dlmnist.analysis.curves:main", "train/val loss and accuracy curves of runs, from metrics.csv"),
    "filters": ("dlmnist.analysis.filters:main", "learned filters of the first conv layer of checkpoints"),
    "ledger": ("dlmnist.ledger.command:main", "results ledger: add runs, render and check the docs' numbers, diff"),
    "export": ("dlmnist.export:main", "a checkpoint as ONNX, TorchScript or torch.export, preprocessing inside"),
}


def help_text() -> str:
    names = ",".join([*LIGHTNING_COMMANDS, *sorted(EXTRA_COMMANDS)])
    lines = [
        f"usage: dlmnist [-h] [--version] [-c CONFIG] [--print_config] {{{names}}} ...",
        "",
        "Classic MNIST deep-feature-learning experiments: PyTorch Lightning models, YAML configs, run folders",
        "runs/<name>/version_<n>/ (config.yaml, metrics.csv, checkpoints/, figures/).",
        "",
        "options:",
        "  -h, --help            show this help message and exit",
        "  --version             print the versions of dlmnist, torch, Lightning and Python and exit",
        "  -c CONFIG, --config CONFIG",
        "                        path to a configuration file in json or yaml format",
        "  --print_config [=flags]",
        "                        print the configuration after applying all other arguments and exit",
        "",
        "training commands (LightningCLI; `dlmnist <command> --help` lists every option):",
        *(f"  {name:<12} {text}" for name, text in LIGHTNING_COMMANDS.items()),
        "",
        "other commands (`dlmnist <command> --help`):",
        *(f"  {name:<12} {text}" for name, (_, text) in sorted(EXTRA_COMMANDS.items())),
    ]
    return "\n".join(lines) + "\n"


def run_extra(name: str, argv: list[str]) -> int:
    module, func = EXTRA_COMMANDS[name][0].split(":")
    return int(getattr(importlib.import_module(module), func)(argv) or 0)


def early_error(argv: list[str]) -> str | None:
    """What can be refused without Lightning: an unknown command, a config file that does not exist."""
    command = argv[0]
    if command not in LIGHTNING_COMMANDS:
        if command.startswith("-"):
            return None  # a top-level option (e.g. -c before the command): LightningCLI's parser answers
        known = [*LIGHTNING_COMMANDS, *sorted(EXTRA_COMMANDS)]
        close = difflib.get_close_matches(command, known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown command '{command}'; {hint}commands: {', '.join(known)}"
    missing = [f for f in config_files(argv[1:]) if not recipes.exists(f)]
    return recipes.unknown(missing[0]) if missing else None


def versions() -> str:
    """``dlmnist --version``: the versions that decide what a run does, read without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    python = sys.version.split()[0]
    return f"dlmnist {of('dlmnist')} (torch {of('torch')}, lightning {of('lightning')}, python {python})\n"


def main(args: Any = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if argv in ([], ["--help"], ["-h"]):
        sys.stdout.write(help_text())
        raise SystemExit(0)
    if argv == ["--version"]:
        sys.stdout.write(versions())
        raise SystemExit(0)
    try:
        if argv[0] in EXTRA_COMMANDS:
            raise SystemExit(run_extra(argv[0], argv[1:]))
        if error := early_error(argv):
            command = f" {argv[0]}" if argv[0] in LIGHTNING_COMMANDS else ""
            sys.stderr.write(f"usage: dlmnist{command} [-h] [-c CONFIG] ...\nerror: {error}\n")
            raise SystemExit(2)
        from dlmnist.cli import main as cli_main

        cli_main(args)
    except ModuleNotFoundError as e:  # an optional extra that is not installed: say which, in one line
        if (line := extras.missing(e, f"dlmnist {argv[0]}")) is None:
            raise
        sys.stderr.write(f"dlmnist: error: {line}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

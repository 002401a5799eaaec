"""The LightningCLI side of the ``dlmnist`` command (fit, validate, test, predict); see :mod:`dlmnist.cli.app`."""

from dlmnist.cli.app import DLMNISTCLI, Resolved, main
from dlmnist.cli.call import RunFailed, call_cli

__all__ = ["DLMNISTCLI", "Resolved", "RunFailed", "call_cli", "main"]

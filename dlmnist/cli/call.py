"""A ``dlmnist`` training command run in this process (the suite, tune and tests start no new process)."""

from __future__ import annotations

import contextlib
import gc
import io
import signal
import warnings

from lightning.pytorch.utilities.exceptions import SIGTERMException

from dlmnist.cli.app import DLMNISTCLI


class RunFailed(RuntimeError):
    pass


def call_cli(argv: list[str], callbacks: tuple = ()) -> tuple[object, str]:
    """``dlmnist ARGV`` in this process, with extra trainer ``callbacks``: ``(the CLI object, what it printed)``.
    Printed output is captured only for ``--print_config``."""
    out = io.StringIO()
    capture = contextlib.redirect_stdout(out) if "--print_config" in argv else contextlib.nullcontext()
    cli, sigint = None, signal.getsignal(signal.SIGINT)
    try:
        with capture, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli = DLMNISTCLI(args=argv, trainer_defaults={"callbacks": list(callbacks)})
    except SystemExit as e:
        if signal.getsignal(signal.SIGINT) is not sigint:  # Lightning caught Ctrl-C (and now ignores it): stop too
            signal.signal(signal.SIGINT, sigint)
            raise KeyboardInterrupt from None
        if isinstance(e, SIGTERMException):  # Lightning stopped the run on SIGTERM: stop the caller too
            raise
        if e.code or "--print_config" not in argv:  # a fit/test that exits, even with code 0, did not finish
            raise RunFailed(f"dlmnist {argv[0]} exited ({e.code})") from None
    finally:
        gc.collect()
    return cli, out.getvalue()

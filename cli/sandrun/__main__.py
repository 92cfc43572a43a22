"""`python -m sandrun`, and the `sandrun` command's entry point.

The command line takes a tenth of a second to import (typer, click). A Ctrl-C in that time must end sandrun
quietly (exit 130), not with a Python traceback of the import machinery: this module imports nothing of
sandrun's until its own handler is in place. For `sandrun run`, a sandbox is started first
(`sandrun.early`), so that it boots while the rest is imported; whatever ends the command, it does not
outlive it.
"""

import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandrun.early import EarlySandbox

_early: "list[EarlySandbox]" = []
"""The sandbox started early, while it may still need tearing down here."""
_starting = False
_signalled: list[int] = []


def _end(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM before the command line runs, or SIGTERM before the runner has taken over
    signals: tear the sandbox started early down, then end as the signal would have ended sandrun."""
    if _starting:  # in the middle of starting the sandbox: finish that first
        _signalled.append(signum)
        return
    _discard_early()
    if signum == signal.SIGINT:
        os._exit(130)  # nothing else has started yet: nothing to clean up, nothing to flush
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _discard_early() -> None:
    for early in _early:
        early.discard()
    _early.clear()


def main() -> None:
    """Install the quiet Ctrl-C, maybe start a sandbox, import the command line, put the usual Ctrl-C back,
    and run it."""
    global _starting
    previous = signal.signal(signal.SIGINT, _end)
    previous_term = signal.signal(signal.SIGTERM, _end)
    if sys.argv[1:2] == ["run"]:
        _starting = True
        from sandrun.early import start

        started = start(sys.argv[1:], os.environ)
        if started is not None:
            _early.append(started)
        _starting = False
        if _signalled:
            _end(_signalled[0], None)
    from sandrun.app import main as run_command_line

    signal.signal(signal.SIGINT, previous)  # Ctrl-C unwinds through the `finally` below
    if not _early:
        signal.signal(signal.SIGTERM, previous_term)
    try:
        run_command_line()
    finally:
        _discard_early()
        signal.signal(signal.SIGTERM, previous_term)


if __name__ == "__main__":
    main()

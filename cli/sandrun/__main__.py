"""`python -m sandrun`, and the `sandrun` command's entry point.

The command line takes a tenth of a second to import (typer, click). A Ctrl-C in that time must end sandrun
quietly (exit 130), not with a Python traceback of the import machinery: this module imports nothing of
sandrun's until its own handler is in place.
"""

import os
import signal
from types import FrameType


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    os._exit(130)  # nothing has started yet: nothing to clean up, nothing to flush


def main() -> None:
    """Install the quiet Ctrl-C, import the command line, put the usual Ctrl-C back, and run it."""
    previous = signal.signal(signal.SIGINT, _exit_quietly)
    from sandrun.app import main as run_command_line

    signal.signal(signal.SIGINT, previous)
    run_command_line()


if __name__ == "__main__":
    main()

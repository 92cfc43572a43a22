"""Getting a finished run's transcripts out: every `--report` file and the `--format` output, each on its own.

Part of the command line. A report that cannot be written (read-only or full disk, a directory in the way)
costs only itself: the others are still written, and the caller gets one message per failure. While they are
written, Ctrl-C and SIGTERM are held back (`SignalsDeferred`): a first signal waits until the reports are
out; a second one aborts, and the atomic writer leaves no temporary file behind.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sandrun.atomic import why_not_written as describe
from sandrun.model import Transcript
from sandrun.reports import render_all, write_report

DEFERRED_NOTE = b"\nsandrun: finishing the reports; press Ctrl-C again to abort them\n"


class SignalsDeferred:
    """Between `hold` and `release`, SIGINT and SIGTERM are recorded instead of acted on; a second one
    raises KeyboardInterrupt (abort), and later ones are ignored so that the abort can clean up.

    Only the main thread can install signal handlers: elsewhere this does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        """Whether a signal arrived (and was held back)."""
        return bool(self.received)

    def hold(self, restore: dict[int, Any] | None = None) -> None:
        """Start holding signals back; `release` restores the handlers found here, or those in `restore`
        (for a caller that must swap its own handler out without a moment under the default one)."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous.update(restore or {})

    def release(self) -> None:
        """Put the handlers back (a signal held back stays recorded in `received`)."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            os.write(2, DEFERRED_NOTE)  # not sys.stderr: the signal may have landed inside one of its writes
        elif len(self.received) == 2:
            raise KeyboardInterrupt


def deliver(
    transcripts: Sequence[Transcript], reports: Sequence[tuple[Path, str]], stdout_format: str | None
) -> list[str]:
    """Write each report, then the transcript(s) on stdout in `stdout_format` (None: nothing there).

    Returns one message per output that could not be written (`cannot write out.json: read-only file
    system`). A closed stdout (`| head`) is not a failure: output to it stops, quietly.
    """
    problems = []
    for path, fmt in reports:
        try:
            write_one(path, transcripts, fmt)
        except OSError as exc:
            problems.append(f"cannot write {path}: {describe(exc)}")
        except Exception as exc:  # a renderer's bug must not cost the other reports
            problems.append(f"cannot write {path}: internal error: {type(exc).__name__}: {exc}")
    if stdout_format is not None:
        try:
            write_stdout(render_all(transcripts, stdout_format))
        except OSError as exc:
            problems.append(f"cannot write the {stdout_format} transcript to stdout: {describe(exc)}")
    return problems


def write_one(path: Path, transcripts: Sequence[Transcript], fmt: str) -> None:
    """Write one report file in format `fmt` (canonical name), with its images beside it for Markdown."""
    files_dir = write_images(path, transcripts) if fmt == "md" else None
    write_report(path, render_all(transcripts, fmt, files_dir))


def write_images(report: Path, transcripts: Sequence[Transcript]) -> str | None:
    """Write the images the transcripts show into `<report stem>_files/` beside the report (made if
    missing; a link there is refused); return that directory's name for the report's links, or None when
    there is no image."""
    from sandrun import safefs
    from sandrun.reports.rich import image_files

    files = image_files(transcripts)
    if not files:
        return None
    name = f"{report.stem}_files"
    parent = safefs.open_directory(report.parent)
    try:
        folder = safefs.enter(parent, (name,), create=True)
        try:
            for file_name, content in files.items():
                safefs.replace(folder, file_name, functools.partial(write_to, data=content))
        finally:
            os.close(folder)
    finally:
        os.close(parent)
    return name


def write_to(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (an image file of a report)."""
    from sandrun import safefs

    safefs.write_all(fd, data)


def write_stdout(text: str) -> None:
    """Write `text` to stdout and flush it; a closed pipe is left alone, quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def stdout_is_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (writing to it would fail with EPIPE)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the writes still buffered (and Python's last flush) go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass

"""Writing a file so that a reader never sees half of it: reports, and recipes rewritten by `--update`."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sandrun import safefs


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8, newlines as given) to `path` atomically, replacing any existing file.

    The directory part of `path` is taken as given (links in it followed: the caller chose it); the text
    goes to a temporary file in that directory, which then replaces the name in one step, so a symbolic
    link at the name itself is replaced, not written through. On any failure the temporary file is removed
    and `path` is untouched. A new file gets the usual permissions (0666 less the umask); a replaced
    regular file keeps its own (less set-id bits).
    """
    target = Path(path)
    directory = safefs.open_directory(target.parent)
    try:
        write_text_at(directory, target.name, text)
    finally:
        os.close(directory)


def write_text_at(directory: int, name: str, text: str) -> None:
    """`write_text_atomically` to `name` in the held `directory` (see `sandrun.safefs.replace`)."""
    data = text.encode("utf-8")
    safefs.replace(directory, name, lambda fd: safefs.write_all(fd, data), keep_mode=True)


def why_not_written(exc: OSError) -> str:
    """Why a write failed, in words a user can act on: `read-only file system`, `no space left on device`,
    `it is a directory`."""
    if exc.errno == errno.EISDIR:
        return "it is a directory"
    reason = exc.strerror or str(exc)
    return reason[:1].lower() + reason[1:]

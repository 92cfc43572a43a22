"""Writing a file so that a reader never sees half of it: reports, and recipes rewritten by `--update`."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8, newlines as given) to `path` atomically, replacing any existing file.

    The text goes to a temporary file in the same directory, which then replaces `path` in one step
    (`os.replace`); on any failure the temporary file is removed and `path` is untouched. A new file
    gets the usual permissions (0666 less the umask); a replaced file keeps its own.
    """
    target = Path(path)
    try:
        mode: int | None = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:  # the open too: an interrupt landing just after it must not leave the file behind
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def why_not_written(exc: OSError) -> str:
    """Why a write failed, in words a user can act on: `read-only file system`, `no space left on device`,
    `it is a directory`."""
    if exc.errno == errno.EISDIR:
        return "it is a directory"
    reason = exc.strerror or str(exc)
    return reason[:1].lower() + reason[1:]

"""Reports: a `Transcript` rendered as text, and written to a file.

Every renderer is a pure function of the transcript. The format of a `--report` file follows its suffix
(`format_for_path`), and files are written atomically (`write_report`), so a reader never sees half a
report and an interrupted write leaves any previous report in place.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sandrun.model import Transcript
from sandrun.reports.json_report import render_json
from sandrun.reports.markdown import render_markdown

FORMATS: dict[str, str] = {"json": "json", "md": "md", "markdown": "md"}
"""Accepted format names, mapped to the canonical one."""

SUFFIXES: dict[str, str] = {".json": "json", ".md": "md", ".markdown": "md"}
"""Report file suffixes (compared case-insensitively), mapped to their format."""

__all__ = ["FORMATS", "SUFFIXES", "format_for_path", "render", "write_report"]


def render(t: Transcript, fmt: str) -> str:
    """The transcript as text in format `fmt`: `json`, or `md`/`markdown`. ValueError for anything else."""
    canonical = FORMATS.get(fmt.lower())
    if canonical == "json":
        return render_json(t)
    if canonical == "md":
        return render_markdown(t)
    raise ValueError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The report format (`json` or `md`) a file name asks for, by its suffix.

    Raises ValueError, naming the valid suffixes, when the suffix is missing or unknown.
    """
    suffix = Path(path).suffix
    fmt = SUFFIXES.get(suffix.lower())
    if fmt is None:
        valid = ", ".join(SUFFIXES)
        got = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ValueError(f"cannot tell the report format of {os.fspath(path)!r} ({got}); use one of: {valid}")
    return fmt


def write_report(path: str | os.PathLike[str], text: str) -> None:
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
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
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

"""GitHub Actions annotations: failing cells as `::error` workflow commands, shown inline on a PR's diff.

One command per failed, timed-out or errored code cell, of the form
`::error file=PATH,line=N,title=TITLE::MESSAGE`. PATH is the cell's path as the user named it (GitHub
matches it against the repository, so run sandrun from the repository root with relative paths). N is
where the problem is: the line of the expected output that did not match, or of the `#>` comments that
did not say what their statement printed (`CellResult.mismatch_line`), else the line of the innermost
frame of the cell's exception in the recipe file, else the cell's first line.
TITLE is the cell's label and what happened; MESSAGE is the reason, then the diff, shortened.

A run that ended in error or was interrupted without any cell showing it (the sandbox could not start,
Ctrl-C between cells) gets one command for the recipe file, without a line. Nothing else is emitted.
Values are escaped as the Actions runner expects, so every command is a single line.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandrun.model import CellKind, CellResult, CellStatus, RunStatus, Transcript
from sandrun.reports.junit import silent_run_failure

MAX_DIFF_LINES = 20
"""Diff lines kept in a message; GitHub shows annotations in a small box."""
MAX_LINE_CHARS = 200
"""Characters kept of each diff line."""

_TITLES = {CellStatus.FAILED: "failed", CellStatus.TIMEOUT: "timed out", CellStatus.ERROR: "errored"}


def escape_data(text: str) -> str:
    """A workflow command's message, escaped: `%`, CR and LF as `%25`, `%0D`, `%0A`."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value, escaped like a message plus `:` and `,` (`%3A`, `%2C`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: str | int | None) -> str:
    """`::kind prop=value,...::message`, escaped; properties that are None are left out."""
    props = ",".join(f"{key}={escape_property(str(v))}" for key, v in properties.items() if v is not None)
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def annotation_line(r: CellResult) -> int:
    """The line in the recipe file an annotation for `r` should point at (see the module docstring)."""
    if r.mismatch_line is not None:
        return r.mismatch_line
    if r.error is not None and r.error.line is not None:
        return r.error.line
    return r.cell.line


def shorten(diff: str, max_lines: int = MAX_DIFF_LINES, max_chars: int = MAX_LINE_CHARS) -> str:
    """`diff` cut to `max_lines` lines of at most `max_chars` characters, saying how much was left out."""
    lines = diff.rstrip("\n").split("\n")
    kept = [line if len(line) <= max_chars else line[: max_chars - 1] + "…" for line in lines[:max_lines]]
    if len(lines) > max_lines:
        kept.append(f"... ({len(lines) - max_lines} more lines)")
    return "\n".join(kept)


def _message(r: CellResult) -> str:
    if r.reason:
        message = r.reason
    elif r.error is not None:
        message = f"{r.error.type}: {r.error.message}"
    else:
        message = r.status.value
    return f"{message}\n{shorten(r.diff)}" if r.diff else message


def _run_annotation(t: Transcript) -> str | None:
    message = silent_run_failure(t)
    if message is None:
        return None
    verb = "interrupted" if t.status is RunStatus.INTERRUPTED else "errored"
    return command("error", message, file=t.recipe.path, title=f"{t.recipe.name or t.recipe.path} {verb}")


def github_annotations(transcripts: Sequence[Transcript]) -> list[str]:
    """One `::error` workflow command per failing code cell of every transcript, in order, no newlines."""
    commands: list[str] = []
    for t in transcripts:
        for r in t.results:
            if r.cell.kind is not CellKind.CODE or r.status not in _TITLES:
                continue
            title = f"{r.cell.label} {_TITLES[r.status]}"
            commands.append(
                command("error", _message(r), file=r.cell.path, line=annotation_line(r), title=title)
            )
        run = _run_annotation(t)
        if run is not None:
            commands.append(run)
    return commands

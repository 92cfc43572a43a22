"""Human output of `sandrun run` on stderr: live progress per cell, diffs, and a summary per recipe.

Part of the command line: only `sandrun.app` uses it. Colours only on a terminal, and never with NO_COLOR.
"""

from __future__ import annotations

import os
import sys

import typer

from sandrun.model import Cell, CellResult, CellStatus, OutputChunk, RunStatus, Transcript

STATUS_COLOURS = {
    CellStatus.PASSED: "green",
    CellStatus.FAILED: "red",
    CellStatus.ERROR: "red",
    CellStatus.TIMEOUT: "red",
    CellStatus.SKIPPED: "yellow",
    CellStatus.NOT_RUN: "yellow",
}


class Console:
    """Human output on stderr: live per-cell progress and a summary; colours only on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        self.line_open = False

    def say(self, text: str = "", colour: str | None = None, bold: bool = False) -> None:
        """Print a line on stderr."""
        if self.colour and (colour or bold):
            text = typer.style(text, fg=colour, bold=bold)
        typer.echo(text, err=True)

    def cell_started(self, cell: Cell) -> None:
        if not self.quiet:
            self.say(f"--- {cell.label} ({cell.location})", bold=True)

    def cell_output(self, cell: Cell, chunk: OutputChunk) -> None:
        if self.quiet:
            return
        text = chunk.text
        if self.colour and chunk.stream == "stderr":
            text = typer.style(text, fg="red")
        sys.stderr.write(text)
        sys.stderr.flush()
        self.line_open = not chunk.text.endswith("\n")

    def cell_finished(self, result: CellResult) -> None:
        if self.line_open:
            sys.stderr.write("\n")
            self.line_open = False
        if result.status is CellStatus.NOT_RUN or (self.quiet and result.status is CellStatus.PASSED):
            return
        if result.status is CellStatus.SKIPPED:
            if not self.quiet and result.cell.kind.value == "code":
                self.say(f"--- {result.cell.label} ({result.cell.location}): skipped", "yellow")
            return
        if result.value is not None and not self.quiet:
            self.say(f"=> {result.value}")
        if result.error is not None and result.status is not CellStatus.PASSED:
            self.say(result.error.traceback.rstrip() or f"{result.error.type}: {result.error.message}", "red")
        verdict = f"{result.status.value} in {format_seconds(result.duration)}"
        if result.status is not CellStatus.PASSED and result.reason:
            verdict += f": {result.reason}"
        if self.quiet:
            verdict = f"{result.cell.label} ({result.cell.location}) {verdict}"
        self.say(verdict, STATUS_COLOURS[result.status])
        if result.diff:
            for line in result.diff.rstrip("\n").splitlines():
                self.say(line, "green" if line.startswith("+") else "red" if line.startswith("-") else None)

    def summary(self, transcript: Transcript) -> None:
        counts = [
            f"{transcript.count(s)} {s.value.replace('_', ' ')}" for s in CellStatus if transcript.count(s)
        ]
        colour = "green" if transcript.status is RunStatus.PASSED else "red"
        self.say(
            f"{transcript.recipe.path}: {transcript.status.value} ({', '.join(counts)}) "
            f"in {format_seconds(transcript.duration)} [{transcript.backend}"
            f"{', NO ISOLATION' if transcript.isolation == 'none' else ''}]",
            colour,
            bold=True,
        )
        if transcript.reason and transcript.status is not RunStatus.PASSED:
            self.say(f"  {transcript.reason}", colour)


def format_seconds(seconds: float) -> str:
    """`0.4 ms`, `12.3 ms` or `1.52 s`."""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"

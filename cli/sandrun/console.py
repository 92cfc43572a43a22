"""Human output of `sandrun run` on stderr: live progress per cell, diffs, and a summary per recipe.

Part of the command line: only `sandrun.app` uses it. Colours only on a terminal, and never with NO_COLOR.
Text that comes from a recipe or a cell is shown with its control characters escaped (`for_terminal`): a cell
must not drive the terminal of whoever runs it (OSC 52 writes the clipboard, CSI moves the cursor). The
transcript keeps the bytes.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading

import typer

from sandrun.durations import format_duration
from sandrun.model import Cell, CellResult, CellStatus, OutputChunk, Recipe, RunStatus, Transcript
from sandrun.text import for_terminal

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
        """Print a line on stderr (control characters escaped)."""
        text = for_terminal(text)
        if self.colour and (colour or bold):
            text = typer.style(text, fg=colour, bold=bold)
        typer.echo(text, err=True)

    def cell_started(self, cell: Cell) -> None:
        """Print the cell's header."""
        if not self.quiet:
            self.say(f"--- {cell.label} ({cell.location})", bold=True)

    def cell_output(self, cell: Cell, chunk: OutputChunk) -> None:
        """Echo output as it arrives (stderr in red on a terminal)."""
        if self.quiet:
            return
        if chunk.rich:  # a picture or markup cannot be shown here: say what it is
            from sandrun.reports.rich import placeholder

            if self.line_open:
                sys.stderr.write("\n")
            self.say(placeholder(chunk).rstrip("\n"), "cyan")
            self.line_open = False
            return
        text = for_terminal(chunk.text)
        if self.colour and chunk.stream == "stderr":
            text = typer.style(text, fg="red")
        sys.stderr.write(text)
        sys.stderr.flush()
        self.line_open = not chunk.text.endswith("\n")

    def cell_finished(self, result: CellResult) -> None:
        """Print the value, the error, the status and time, and the diff of a mismatch."""
        if self.line_open:
            sys.stderr.write("\n")
            self.line_open = False
        if result.status is CellStatus.NOT_RUN or (self.quiet and result.status is CellStatus.PASSED):
            return
        if result.status is CellStatus.SKIPPED:
            if not self.quiet and result.cell.kind.value == "code":
                why = f" ({result.reason})" if result.reason else ""
                self.say(f"--- {result.cell.label} ({result.cell.location}): skipped{why}", "yellow")
            return
        if result.value is not None and not self.quiet:
            self.say(f"=> {result.value}")
        if result.error is not None and result.status is not CellStatus.PASSED:
            self.say(result.error.traceback.rstrip() or f"{result.error.type}: {result.error.message}", "red")
        verdict = f"{result.status.value} in {format_duration(result.duration)}"
        if result.status is not CellStatus.PASSED and result.reason:
            verdict += f": {result.reason}"
        if self.quiet:
            verdict = f"{result.cell.label} ({result.cell.location}) {verdict}"
        self.say(verdict, STATUS_COLOURS[result.status])
        if result.diff:
            for line in result.diff.rstrip("\n").splitlines():
                self.say(line, "green" if line.startswith("+") else "red" if line.startswith("-") else None)

    def summary(self, transcript: Transcript) -> None:
        """One line for a finished recipe, plus why it stopped early if it did."""
        counts = [
            f"{transcript.count(s)} {s.value.replace('_', ' ')}" for s in CellStatus if transcript.count(s)
        ]
        colour = "green" if transcript.status is RunStatus.PASSED else "red"
        self.say(
            f"{transcript.recipe.path}: {transcript.status.value} ({', '.join(counts)}) "
            f"in {format_duration(transcript.duration)} [{transcript.backend}"
            f"{', NO ISOLATION' if transcript.isolates_nothing else ''}]",
            colour,
            bold=True,
        )
        if transcript.reason and transcript.status is not RunStatus.PASSED:
            self.say(f"  {transcript.reason}", colour)


def overall(console: Console, transcripts: list[Transcript], seconds: float, skipped: int = 0) -> None:
    """One line for a run of several recipes: how many ended how, how many the project skipped, and the
    wall time."""
    counts: dict[str, int] = {}
    for transcript in transcripts:
        counts[transcript.status.value] = counts.get(transcript.status.value, 0) + 1
    ok = set(counts) == {RunStatus.PASSED.value}
    if skipped:
        counts["skipped"] = skipped
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    console.say(
        f"{len(transcripts) + skipped} recipes: {parts} in {format_duration(seconds)}",
        "green" if ok else "red",
        True,
    )


class Board:
    """Progress of several recipes running at once: one live line per running recipe on a terminal, and a
    line per finished recipe (with its failures) everywhere. Safe to call from the runners' threads."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.lock = threading.Lock()
        self.live: dict[str, str] = {}
        self.drawn = 0
        self.finished = 0
        self.redraw = sys.stderr.isatty() and not console.quiet

    def listener_for(self, recipe: Recipe) -> RecipeProgress:
        """The listener that reports one recipe's cells to this board."""
        return RecipeProgress(self, recipe)

    def update(self, path: str, text: str | None) -> None:
        """Set (or with None, remove) the live line of a recipe."""
        with self.lock:
            if text is None:
                self.live.pop(path, None)
            else:
                self.live[path] = text
            self._draw()

    def finish(self, transcript: Transcript) -> None:
        """Print a finished recipe's failures and summary above the live lines."""
        with self.lock:
            self.live.pop(transcript.recipe.path, None)
            self._erase()
            self.finished += 1
            for result in transcript.results:
                if result.status in (CellStatus.FAILED, CellStatus.TIMEOUT, CellStatus.ERROR):
                    if not self.console.quiet:
                        self.console.say(f"--- {result.cell.label} ({result.cell.location})", bold=True)
                    self.console.cell_finished(result)
            self.console.summary(transcript)
            self._draw()

    def _erase(self) -> None:
        if self.redraw and self.drawn:
            sys.stderr.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _draw(self) -> None:
        if not self.redraw:
            return
        self._erase()
        lines = [f"[{self.finished}/{self.total} done] {path}: {text}" for path, text in self.live.items()]
        for line in lines:
            sys.stderr.write(for_terminal(line)[: shutil.get_terminal_size().columns - 1] + "\n")
        sys.stderr.flush()
        self.drawn = len(lines)


class RecipeProgress:
    """A `RunListener` that turns one recipe's cell events into its live line on a `Board`."""

    def __init__(self, board: Board, recipe: Recipe) -> None:
        self.board = board
        self.path = recipe.path
        self.count = len(recipe.code_cells)
        self.done = 0

    def cell_started(self, cell: Cell) -> None:
        """Show on the recipe's live line which cell runs now."""
        self.board.update(self.path, f"cell {self.done + 1}/{self.count} {cell.label} ({cell.location})")

    def cell_output(self, cell: Cell, chunk: OutputChunk) -> None:
        """Nothing: recipes that run together do not echo their output (`Board.finish` shows failures)."""

    def cell_finished(self, result: CellResult) -> None:
        """Count a finished code cell; nothing is printed."""
        if result.cell.kind.value == "code":
            self.done += 1

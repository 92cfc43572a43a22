"""Expectations written as comments at the end of a Python cell, so a percent-format recipe stays a plain
Python script and a jupytext notebook with the same cells:

    # %% Greet
    print("hello")
    print("world")
    # expect stdout:
    # hello
    # world

Directives: `# expect stdout:` and `# expect stderr:` followed by the expected text, one `# `-prefixed
comment line per line of output (a bare `#` is an empty line); `# expect value: 42` (the trailing
expression's repr); `# expect error: ValueError`; `# expect error_message: invalid literal` (a regular
expression searched in the message); `# expect match: exact` (or ellipsis, the default; regex; whitespace).
Ordinary comments may come before the first directive; from it to the end of the cell, only directives and
their text.

`--update` rewrites them here too: `rewrite` writes new expected text as these comments, and `code` is the
part of a cell that it leaves as it was.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sandrun.errors import RecipeError
from sandrun.expect import Written, expectation
from sandrun.model import Cell, Expectation, ExpectedText
from sandrun.readers import Replacement
from sandrun.readers.lines import line_block, newline_of

DIRECTIVE = re.compile(r"^# expect (\w+):(?: (.*))?$")
_ANY_DIRECTIVE = re.compile(r"^# expect \w+:", re.MULTILINE)
BLOCK_KINDS = ("stdout", "stderr")
INLINE_KINDS = ("value", "error", "error_message", "match")


def with_expectations(cell: Cell, line_starts: list[int]) -> Cell:
    """`cell` with the expectations its trailing comment block declares (unchanged if it has none).

    `line_starts[n]` is the character offset where line n + 1 of the file starts, with one more entry for
    the end of the file: that is how the expected text is located for `--update`.
    """
    lines = cell.source.split("\n")
    first = _first_directive(lines)
    if first is None:
        return cell
    values: dict[str, str] = {}
    texts: dict[str, list[str]] = {}  # the lines of stdout and stderr, joined at the end (linear time)
    spans: dict[str, tuple[int, int, int]] = {}  # kind -> (file line of the text, start offset, end offset)
    current: str | None = None
    for i in range(first, len(lines)):
        line, file_line = lines[i], cell.line + i
        start, end = line_starts[file_line - 1], line_starts[file_line]
        match = DIRECTIVE.match(line)
        if match:
            current = _directive(match, cell, file_line, values)
            if current is None:
                value_start = start + line.index(":") + 2
                spans[match.group(1)] = (file_line, value_start, value_start + len(match.group(2)))
            else:
                spans[current] = (file_line + 1, end, end)
        elif current is not None and line.startswith("#"):
            texts.setdefault(current, []).append(line[2:] if line.startswith("# ") else line[1:])
            spans[current] = (spans[current][0], spans[current][1], end)
        elif line.strip():
            message = "only `# expect ...` directives and their text may follow the first one"
            raise RecipeError(cell.path, file_line, message, hint="move this line above the `# expect` block")
    values.update((kind, "\n".join(lines)) for kind, lines in texts.items())
    return replace(cell, expect=_expectation(cell, values, spans))


def _first_directive(lines: list[str]) -> int | None:
    """Index of the first directive of the cell's trailing comment block, if any."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and lines[start - 1].startswith("#"):
        start -= 1
    return next((i for i in range(start, end) if DIRECTIVE.match(lines[i])), None)


def _directive(match: re.Match[str], cell: Cell, file_line: int, values: dict[str, str]) -> str | None:
    """Record one directive; return its kind if text lines follow it, None if it was complete inline."""
    kind, inline = match.group(1), match.group(2)
    if kind not in BLOCK_KINDS + INLINE_KINDS:
        raise RecipeError(
            cell.path, file_line, f"unknown expectation {kind!r}",
            hint=f"use one of: {', '.join(BLOCK_KINDS + INLINE_KINDS)}",
        )  # fmt: skip
    if kind in values:
        raise RecipeError(cell.path, file_line, f"`# expect {kind}:` appears twice in this cell")
    if kind in BLOCK_KINDS:
        if inline:
            message = f"write the expected {kind} on the lines below, each starting with `# `"
            raise RecipeError(cell.path, file_line, message)
        values[kind] = ""
        return kind
    if not inline:
        raise RecipeError(cell.path, file_line, f"`# expect {kind}:` needs a value on the same line")
    values[kind] = inline
    return None


def _expectation(cell: Cell, values: dict[str, str], spans: dict[str, tuple[int, int, int]]) -> Expectation:
    """The cell's checked expectation (a `raises-exception` tag stands for `# expect error: *`)."""
    written = {kind: Written(text, spans[kind][0], spans[kind][1:]) for kind, text in values.items()}
    if "error" not in written and cell.expect.error is not None:
        written["error"] = Written(cell.expect.error, cell.line)
    return expectation(cell.path, written)


def code(source: str) -> str:
    """A cell's source up to its first `# expect` line: what rewriting its expectations leaves as it was."""
    return _ANY_DIRECTIVE.split(source, maxsplit=1)[0]


def rewrite(text: str, expected: ExpectedText, what: str, new: str, path: str) -> Replacement:
    """`new` in place of `expected`: a value on its directive's line, other texts as `# ` lines."""
    start, end = expected.span  # type: ignore[misc]
    if what == "value":
        if "\n" in new:
            raise RecipeError(
                path, expected.line, "the new value's repr spans several lines, "
                "but `# expect value:` holds one", hint="print() it and use `# expect stdout:` instead",
            )  # fmt: skip
        return Replacement(start, end, new)
    lines = [f"# {line}" if line else "#" for line in new.split("\n")] if new else []
    return Replacement(start, end, line_block(text, start, end, lines, newline_of(text)))

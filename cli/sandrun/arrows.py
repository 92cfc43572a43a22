"""`#>` comments: what the statement above them printed, written as pytest-examples writes it.

```python
x = {"a": 1}
print(x)
#> {'a': 1}
```

In a cell whose code has whole-line `#>` comments, every top-level statement owns the `#>` lines from its
first line up to the next top-level statement: inside its body (a `print` in a loop) or after it. Together,
one line each (`#>` alone is an empty line), they are all that the statement printed to stdout, compared
doctest-style (`...` matches anything; spaces at line ends and trailing newlines do not matter). Statements
on one line share their `#>` lines. In such a cell a statement that printed without `#>` lines fails too:
the cell said its output is written in it. The driver records what each statement printed only for cells
with `#>` (`sandrun.runner.has_arrows`), and this module is imported only for them.

`--update` rewrites the `#>` lines of a statement that do not match with what it printed, indented as the
first of them (after the prefix of a Markdown container, a reST directive, a YAML block); a statement that
printed without any gets them after its last line; one that printed nothing loses them.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

from sandrun.expect import Verdict, diff, text_matches
from sandrun.model import Cell, CellResult, CellStatus, ExpectedText, StatementOutput
from sandrun.readers.lines import split_lines

ARROW = "#>"
_EXPECT_BLOCK = re.compile(r"# expect \w+:")
WHAT = "#> output"
"""How an update of `#>` lines is named (`updated the expected #> output`)."""


@dataclass(frozen=True)
class Arrow:
    """One whole-line `#>` comment of a cell."""

    line: int
    """1-based line in the cell's source."""
    text: str
    """The printed line it expects: what follows `#>` and one space."""


@dataclass(frozen=True)
class Owned:
    """Top-level statements that start on one line, what they printed, and the `#>` lines they own."""

    line: int
    """1-based line in the recipe file where they start."""
    end_line: int
    """1-based line in the recipe file where the last of them ends."""
    stdout: str
    arrows: tuple[Arrow, ...]

    @property
    def expected(self) -> str | None:
        """What the `#>` lines say was printed, or None when there are none."""
        return "\n".join(arrow.text for arrow in self.arrows) if self.arrows else None

    def matches(self) -> bool:
        """Whether what was printed is what the `#>` lines say (nothing, when there are none)."""
        if self.expected is None:
            return not self.stdout.strip("\n")
        return text_matches(ExpectedText(self.expected), self.stdout)


def arrows(source: str) -> list[Arrow]:
    """The whole-line `#>` comments of `source` (not lines of a string literal that look like them, nor
    the lines of a percent-format cell's `# expect ...:` block at its end, which are expected text)."""
    lines = split_lines(source)
    block = next((n for n, line in enumerate(lines) if _EXPECT_BLOCK.match(line)), len(lines))
    found = [n for n, line in enumerate(lines[:block], 1) if line.lstrip(" \t").startswith(ARROW)]
    if not found:
        return []
    comments = _comment_lines(source)
    return [Arrow(n, _text(lines[n - 1])) for n in found if comments is None or n in comments]


def _text(line: str) -> str:
    text = line.lstrip(" \t")[len(ARROW) :]
    return text[1:] if text.startswith(" ") else text


def _comment_lines(source: str) -> set[int] | None:
    """Lines where a `#>` comment token starts, or None if the code cannot be tokenized."""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(source, newline="").readline)
        return {t.start[0] for t in tokens if t.type == tokenize.COMMENT and t.string.startswith(ARROW)}
    except (tokenize.TokenError, SyntaxError):
        return None


def without_arrows(source: str) -> str:
    """`source` without its whole-line `#>` lines (what an update of them must leave as it was)."""
    return "\n".join(line for line in split_lines(source) if not line.lstrip(" \t").startswith(ARROW))


def owned(cell: Cell, printed: tuple[StatementOutput, ...]) -> tuple[list[Arrow], list[Owned]]:
    """The `#>` lines before any statement, and each group of statements with the `#>` lines it owns."""
    groups: list[list[StatementOutput]] = []
    for statement in printed:
        if groups and groups[-1][0].line == statement.line:
            groups[-1].append(statement)
        else:
            groups.append([statement])
    found = arrows(cell.source)
    firsts = [group[0].line - cell.line + 1 for group in groups]  # in the cell's source
    orphans = [a for a in found if not firsts or a.line < firsts[0]]
    result = []
    for index, group in enumerate(groups):
        stop = firsts[index + 1] if index + 1 < len(firsts) else None
        mine = tuple(a for a in found if a.line >= firsts[index] and (stop is None or a.line < stop))
        stdout = "".join(statement.stdout for statement in group)
        end = max(statement.end_line for statement in group)
        result.append(Owned(group[0].line, end, stdout, mine))
    return orphans, result


def file_line(cell: Cell, arrow: Arrow) -> int:
    """The line of the recipe file where `arrow` is written."""
    return cell.line + arrow.line - 1


def judge_arrows(cell: Cell, printed: tuple[StatementOutput, ...]) -> Verdict:
    """The verdict on a cell that ran as expected otherwise: do its `#>` lines say what was printed? When
    not, its `mismatch_line` is the first wrong one: the first of the `#>` lines of the first statement
    they do not match (or that statement's line, when it printed without any)."""
    orphans, groups = owned(cell, printed)
    if orphans:
        line = file_line(cell, orphans[0])
        reason = f"the #> lines at {cell.path}:{line} follow no statement"
        return Verdict(CellStatus.FAILED, reason, mismatch_line=line)
    wrong = [group for group in groups if not group.matches()]
    if not wrong:
        return Verdict(CellStatus.PASSED)
    reasons, diffs, lines = [], [], []
    for group in wrong:
        if group.arrows:
            lines.append(file_line(cell, group.arrows[0]))
            where = f"{cell.path}:{lines[-1]}"
            reasons.append(f"the #> lines at {where} do not match what line {group.line} printed")
        else:
            lines.append(group.line)
            where = f"{cell.path}:{group.line}"
            reasons.append(f"the statement at {where} printed, but no #> lines follow it")
        diffs.append(diff(group.expected or "", group.stdout, f"#> output ({where})"))
    more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
    return Verdict(CellStatus.FAILED, reasons[0] + more, "".join(diffs), mismatch_line=lines[0])


def notebook_notes(results: tuple[CellResult, ...]) -> list[str]:
    """Notes on the `#>` lines of notebook cells that do not match: a notebook's code is not rewritten."""
    notes = []
    for result in results:
        if result.printed is None or result.status is not CellStatus.FAILED:
            continue
        if judge_arrows(result.cell, result.printed).status is CellStatus.FAILED:
            why = "the code of a notebook cell is not rewritten; edit it by hand"
            notes.append(f"{result.cell.label}: {WHAT} ({result.cell.location}) left as it is: {why}")
    return notes


@dataclass(frozen=True)
class Rewrite:
    """New `#>` lines for one group of statements: replace the whole lines `text[start:end]` with `lines`."""

    start: int
    end: int
    lines: tuple[str, ...]
    line: int
    """The line of the recipe file it is about, for messages."""
    old: str
    new: str


def plan_arrows(
    cell: Cell, printed: tuple[StatementOutput, ...], text: str, starts: list[int]
) -> tuple[list[Rewrite], list[str], list[str]]:
    """How to make the `#>` lines of `cell` say what it printed, in the recipe `text` whose lines start at
    `starts` (`sandrun.readers.lines.line_starts`): the rewrites, notes on groups left as they are (why),
    and the text of every `#>` line of the cell once rewritten, to check the result against."""
    orphans, groups = owned(cell, printed)
    source = split_lines(cell.source)
    rewrites: list[Rewrite] = []
    notes: list[str] = []
    after = [orphan.text for orphan in orphans]
    for group in groups:
        new = group.stdout.rstrip("\n")
        old_texts = [arrow.text for arrow in group.arrows]
        rewrite, why = None, None
        if not group.matches():
            rewrite, why = _rewrite(cell, group, new, source, text, starts)
        if why:
            notes.append(f"{cell.label}: {WHAT} ({cell.path}:{group.line}) left as it is: {why}")
        after += old_texts if rewrite is None else new.split("\n") if new else []
        if rewrite is not None:
            rewrites.append(rewrite)
    return rewrites, notes, after


def _rewrite(
    cell: Cell, group: Owned, new: str, source: list[str], text: str, starts: list[int]
) -> tuple[Rewrite | None, str | None]:
    """The rewrite of one mismatching group, or why there is none."""
    if "\r" in new or "\x00" in new:
        return None, "what it printed has a carriage return or a NUL, which a #> line cannot hold"
    lines = [a.line for a in group.arrows] or [group.line - cell.line + 1]
    if lines != list(range(lines[0], lines[-1] + 1)):
        return None, "its #> lines are in several places; edit them by hand"
    prefixes = [_prefix(cell, n, source, text, starts) for n in lines]
    prefix = prefixes[0]
    if prefix is None or None in prefixes:
        return None, "where its lines are in the file is not known"
    written = (
        tuple(prefix + (f"{ARROW} {line}" if line else ARROW) for line in new.split("\n")) if new else ()
    )
    if group.arrows:
        first, last = cell.line + lines[0] - 1, cell.line + lines[-1] - 1
        start, end = starts[first - 1], starts[last]
    else:
        start = end = starts[group.end_line] if group.end_line < len(starts) else len(text)
    return Rewrite(start, end, written, cell.line + lines[0] - 1, group.expected or "", new), None


def _prefix(cell: Cell, number: int, source: list[str], text: str, starts: list[int]) -> str | None:
    """What comes before the code on line `number` of the cell's source, in the file (a container's
    prefix and the code's indentation): None if that file line does not end with that source line."""
    at = cell.line + number - 1
    if not 0 < number <= len(source) or at >= len(starts):
        return None
    line = split_lines(text[starts[at - 1] : starts[at]])[0]
    code = source[number - 1]
    if not line.endswith(code):
        return None
    return line[: len(line) - len(code.lstrip(" \t"))]

"""Markdown fenced code blocks, by CommonMark's rules: what a fence line is, which line closes a block, and
the fence that no line of a given text can close.

One place for the rules that the percent reader (fences in markdown cells hide `# %%` lines), `--update`
(rewriting an output block) and the Markdown report (wrapping output and cell sources) all follow. It
imports nothing of sandrun, so readers and reports may both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE_PATTERN = r"(`{3,}|~{3,})(.*)"
"""A fence's run of backticks or tildes and the rest of its line (two groups), after its indentation."""

_LINE = re.compile(r" {0,3}" + FENCE_PATTERN)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SPACES_OR_TABS = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class FenceLine:
    """A line that looks like a code fence: a run of three or more backticks or tildes, indented by at most
    three spaces (more would make it indented code)."""

    marker: str
    """The run: three or more of one character."""
    info: str
    """The rest of the line (an opening fence's language and options)."""

    @property
    def opens(self) -> bool:
        """Whether it can open a block: a backtick fence whose info string holds a backtick cannot (it would
        be an inline code span)."""
        return not (self.marker[0] == "`" and "`" in self.info)

    def closes(self, opening: FenceLine, *, jupytext: bool = False) -> bool:
        """Whether it closes the block that `opening` began: the same character, at least as many, and
        nothing after them but spaces and tabs. With `jupytext`, anything Python's `str.strip` removes
        counts as nothing too, as jupytext (the percent format's reference) reads it."""
        rest = not self.info.strip() if jupytext else _SPACES_OR_TABS.fullmatch(self.info) is not None
        return rest and self.marker[0] == opening.marker[0] and len(self.marker) >= len(opening.marker)


def fence_line(line: str) -> FenceLine | None:
    """The fence on `line` (one line, without its ending), if it is one."""
    match = _LINE.fullmatch(line)
    return FenceLine(match.group(1), match.group(2)) if match else None


def fence_for(text: str, char: str = "`", shortest: int = 3) -> str:
    """The shortest run of `char`, at least `shortest` long, that no line of `text` can close: longer than
    every run of `char` that begins a line (after any whitespace: more than CommonMark's three spaces may
    not close a block, but counting them costs at most a longer fence)."""
    runs = (len(line) - len(line.lstrip(char)) for line in (x.lstrip() for x in _LINE_BREAK.split(text)))
    return char * max(shortest, max(runs, default=0) + 1)

"""Writing new expected output into Markdown (MyST too) and reStructuredText documents, for `--update`.

One rule for both formats, since a MyST document holds reST (`{eval-rst}`) and both hold `>>>` sessions:

- a `>>>` session's output: its lines, indented as the prompt is (list markers become spaces), an empty line
  written `<BLANKLINE>`;
- an indented body (reST's `.. testoutput::`, also inside a MyST `{eval-rst}`): re-indented as the old one
  was (reST: three spaces if it was empty);
- a Markdown output block: its content, inside the block quotes and list items it stands in, with a longer
  fence if a new line could close the old one.
"""

from __future__ import annotations

import re

from sandrun.fences import FENCE_PATTERN, fence_for
from sandrun.model import ExpectedText
from sandrun.readers import Replacement
from sandrun.readers.lines import line_block, newline_of, split_lines

_CONTAINER = r"(?:[ \t>]|[-+*][ \t]|[0-9]{1,9}[.)][ \t])*"  # blockquote and list item prefixes, as written
_FENCE = re.compile(rf"({_CONTAINER}){FENCE_PATTERN}")
_PROMPT = re.compile(rf"({_CONTAINER}?)>>>")
_MARKER = re.compile(r"[-+*]|[0-9]{1,9}[.)]")
_LINE_END = re.compile(r"\r\n|\r|\n")


def rewrite_markdown(text: str, expected: ExpectedText, what: str, new: str, path: str) -> Replacement:
    """`new` in place of `expected` in a Markdown document (`sandrun.readers.Rewriter`)."""
    return _rewrite(text, expected, what, new, rst=False)


def rewrite_rst(text: str, expected: ExpectedText, what: str, new: str, path: str) -> Replacement:
    """`new` in place of `expected` in a reStructuredText document (`sandrun.readers.Rewriter`)."""
    return _rewrite(text, expected, what, new, rst=True)


def _rewrite(text: str, expected: ExpectedText, what: str, new: str, rst: bool) -> Replacement:
    start, end = expected.span  # type: ignore[misc]
    nl = newline_of(text)
    if what == "repl":
        prompt = next((x for x in reversed(split_lines(text[:start])) if ">>>" in x), "")
        found = _PROMPT.match(prompt)
        indent = _continued(found.group(1) if found else "")
        lines = [indent + (x if x.strip() else "<BLANKLINE>") for x in new.split("\n")] if new else []
        return Replacement(start, end, line_block(text, start, end, lines, nl))
    if rst or _opening_fence(text, start)[1] is None:
        old = next((x for x in split_lines(text[start:end]) if x.strip()), "")
        indent = old[: len(old) - len(old.lstrip(" "))] or ("   " if rst else "")
        lines = [indent + x if x else "" for x in new.split("\n")]
        return Replacement(start, end, line_block(text, start, end, lines, nl))
    return _fenced(text, start, end, new, nl)


def _opening_fence(text: str, start: int) -> tuple[int, re.Match[str] | None]:
    """The line that ends just before offset `start`: where it starts, and its match as an opening fence
    (None if it is not one)."""
    ending = 2 if text.endswith("\r\n", 0, start) else 1 if text.endswith(("\n", "\r"), 0, start) else 0
    opening_end = start - ending
    open_start = max(text.rfind("\n", 0, opening_end), text.rfind("\r", 0, opening_end)) + 1
    return open_start, _FENCE.fullmatch(text[open_start:opening_end])


def _fenced(text: str, start: int, end: int, new: str, nl: str) -> Replacement:
    """The content of a fenced block; the fence is lengthened if a new line could close it."""
    open_start, opening = _opening_fence(text, start)
    assert opening is not None, "an output block's content starts after its opening fence"
    indent, fence, info = opening.groups()
    inner, blank = _continued(indent), _continued(indent).rstrip() if ">" in indent else ""
    lines = new.split("\n") if new else []
    content = "".join((inner + line if line else blank) + nl for line in lines)
    longer = fence_for(new, fence[0], len(fence))
    if longer == fence:
        return Replacement(start, end, content)
    line_end = _LINE_END.search(text, end)
    closing_line = text[end : line_end.start() if line_end else len(text)]
    close_end, closing = end + len(closing_line), _FENCE.fullmatch(closing_line)
    tail = closing.group(1) + longer + closing.group(3) if closing else ""
    opening_line = indent + longer + info + nl
    return Replacement(open_start, close_end if closing else end, opening_line + content + tail)


def _continued(prefix: str) -> str:
    """The prefix of a container's later lines, from its first line's: list markers become spaces."""
    return _MARKER.sub(lambda marker: " " * len(marker[0]), prefix)

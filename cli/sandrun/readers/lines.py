"""Lines as Python's tokenizer and editors count them: ended by `\\n`, `\\r\\n` or `\\r`, and nothing else.

`str.splitlines` also splits at form feed, vertical tab, FS/GS/RS, NEL (U+0085) and the Unicode line and
paragraph separators, all of which may stand inside a Python string literal or a comment: every reader and
the updater cut lines here instead, so that line numbers match the editor's and a cell's code stays whole.
"""

from __future__ import annotations

import bisect
import re

NEWLINE = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their endings; a text that ends with a line ending ends with `""`."""
    return NEWLINE.split(text)


def text_lines(text: str) -> list[str]:
    """The lines of `text` without their endings, as `str.splitlines` gives them (no `""` for a final
    line ending), but cut only at `\\n`, `\\r\\n` and `\\r`."""
    lines = NEWLINE.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def line_starts(text: str) -> list[int]:
    """The offset where each line of `text` starts, then `len(text)`: line n (from 1) is
    `text[starts[n - 1]:starts[n]]`, its ending included (a final line ending adds no empty line)."""
    starts = [0, *(newline.end() for newline in NEWLINE.finditer(text))]
    if starts[-1] != len(text):
        starts.append(len(text))
    return starts


def newline_of(text: str) -> str:
    """The line ending to write into `text`: `\\r\\n` if it has one, else `\\r` if it uses only those,
    else `\\n`."""
    if "\r\n" in text:
        return "\r\n"
    return "\r" if "\r" in text and "\n" not in text else "\n"


def ends_with_newline(text: str) -> bool:
    """Whether the last line of `text` has a line ending."""
    return text.endswith(("\n", "\r"))


def line_block(text: str, start: int, end: int, lines: list[str], nl: str) -> str:
    """`lines`, each ended by `nl`, as a block to write in place of the whole lines `text[start:end]`:
    without the last ending if the file's last line had none."""
    block = "".join(line + nl for line in lines)
    if end == len(text) and not ends_with_newline(text) and block:
        block = (nl if start == end else "") + block[: -len(nl)]
    return block


class LineIndex:
    """Maps character offsets of one text to line numbers (from 1) in O(log lines) each."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(newline.end() for newline in NEWLINE.finditer(text))]

    def line_of(self, offset: int) -> int:
        """The number of the line that holds offset `offset` (the line ending belongs to its line)."""
        return bisect.bisect_right(self._starts, offset)

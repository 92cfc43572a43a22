"""Text that can always be written: to a file, a pipe or a terminal.

Two dangers, one module. A lone surrogate (`"\\ud800"`, from a recipe or a forged protocol line) is a
Python string that no UTF-8 file can hold: written as is, it raises `UnicodeEncodeError`. And a cell's own
text, shown raw on a terminal, can drive that terminal (OSC 52 writes the clipboard, CSI sequences move the
cursor and erase what sandrun printed).
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")

_KEPT = {"\n", "\t"}
_CONTROL = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in _KEPT]
_TERMINAL_TABLE = {ord(c): f"\\x{ord(c):02x}" for c in _CONTROL}
_HAS_CONTROL = re.compile("[" + re.escape("".join(_CONTROL)) + "]")


def writable(text: str) -> str:
    """`text` with every lone surrogate written as its escape (`\\ud800`); other text unchanged.

    In a JSON document the escape is JSON's own, so the string reads back exactly as it was.
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def for_terminal(text: str) -> str:
    """`text` as it may be shown on a terminal: control characters other than newline and tab (ESC, BEL,
    carriage return, backspace, C1 controls such as CSI) are shown as escapes (`\\x1b`), so that text from a
    cell cannot move the cursor, set the window title or write the clipboard; lone surrogates escaped too.
    """
    if _HAS_CONTROL.search(text) is not None:
        text = text.translate(_TERMINAL_TABLE)
    return writable(text)

"""TOML text: parsed on every supported Python (the standard library's `tomllib` from 3.11, else `tomli`, the
same parser under its older name, a dependency on 3.10 only), and where its keys are written, which parsers
do not say. Imported only where TOML is read."""

from __future__ import annotations

import re
import sys

if sys.version_info >= (3, 11):
    from tomllib import TOMLDecodeError, loads
else:  # pragma: no cover - exercised on Python 3.10 only
    from tomli import TOMLDecodeError, loads

__all__ = ["KeyLines", "TOMLDecodeError", "loads"]

_HEADER = re.compile(r"^[ \t]*(\[\[?)[ \t]*([^\[\]]+?)[ \t]*\]\]?[ \t]*(?:#.*)?$")
_NAME = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_KEY = re.compile(rf"^[ \t]*({_NAME}(?:[ \t]*\.[ \t]*{_NAME})*)[ \t]*=")
_PART = re.compile(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""")


class KeyLines:
    """Where keys and tables are written in a TOML text, by their full path (the n-th table of an array of
    tables is its index), found by a line scan: TOML parsers do not say."""

    def __init__(self, text: str) -> None:
        self.entries: list[tuple[tuple[str | int, ...], int]] = []
        arrays: dict[tuple[str | int, ...], int] = {}
        table: tuple[str | int, ...] = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), 1):
            quotes = line.count('"""') + line.count("'''")
            if in_string:
                in_string = quotes % 2 == 0
                continue
            header, key = _HEADER.match(line), _KEY.match(line)
            if header:
                name = self._with_indexes(_parts(header[2]), arrays)
                if header[1] == "[[":
                    arrays[name] = arrays.get(name, -1) + 1
                    name = (*name, arrays[name])
                table = name
                self.entries.append((table, number))
            elif key:
                self.entries.append(((*table, *_parts(key[1])), number))
            in_string = quotes % 2 == 1

    @staticmethod
    def _with_indexes(
        name: tuple[str, ...], arrays: dict[tuple[str | int, ...], int]
    ) -> tuple[str | int, ...]:
        """A table name with the current index after each array of tables it lies in."""
        full: tuple[str | int, ...] = ()
        for part in name:
            full = (*full, part)
            if full in arrays and full != name:
                full = (*full, arrays[full])
        return full

    def line_of(self, key: tuple[str | int, ...]) -> int | None:
        """The line of `key`; else of the first key below it; else of the nearest table or key above it."""
        for entry, line in self.entries:
            if entry == key:
                return line
        for entry, line in self.entries:
            if entry[: len(key)] == key:
                return line
        for size in range(len(key) - 1, 0, -1):
            for entry, line in self.entries:
                if entry == key[:size]:
                    return line
        return None


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(
        m[1] if m[1] is not None else m[2] if m[2] is not None else m[3] for m in _PART.finditer(dotted)
    )

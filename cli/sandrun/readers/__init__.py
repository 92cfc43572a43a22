"""Reading recipe files into `Recipe`s, and writing new expected texts into them: one module per format,
chosen by the file's suffix.

Each format's module defines `FORMAT`, a `Format`: its reader, a function `parse(text, path, sha256) ->
Recipe` that raises `RecipeError` with the line where the problem is, and its rule for rewriting an expected
text in place (`--update`). `load_recipe` does what the readers share: reading bytes, refusing binary or
non-UTF-8 files, and picking the reader; `recipe_format` gives `--update` a recipe's format by its name. A
reader reads no other file, but for Sphinx pages (reST, and Markdown with MyST's doctest directives): their
`conf.py`, as text, for its doctest global setup (`sphinx_conf`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import NamedTuple, Protocol

from sandrun.errors import RecipeError
from sandrun.model import ExpectedText, MatchMode, Recipe

Parser = Callable[[str, str, str], Recipe]


class Replacement(NamedTuple):
    """Write `text` in place of `[start:end]` of a recipe's text."""

    start: int
    end: int
    text: str


class Rewriter(Protocol):
    """A format's rule for writing a new expected text where an old one is written."""

    def __call__(self, text: str, expected: ExpectedText, what: str, new: str, path: str) -> Replacement:
        """What to write in place of which part of `text` (the recipe at `path`) so that `expected`, read
        from it with its `span` (the expected `what`: stdout, stderr, value or repl), reads back as `new`
        (without trailing newlines). Raises `RecipeError` if the format cannot hold `new` there."""
        ...  # pragma: no cover


def _whole(source: str) -> str:
    """All of a cell's source is code (its expected texts are written elsewhere)."""
    return source


@dataclass(frozen=True)
class Format:
    """What sandrun needs of a recipe format, defined in its reader's module as `FORMAT`."""

    parse: Parser
    """Its reader."""
    rewrite: Rewriter | None = None
    """Its rule for rewriting an expected text in place; None if expected texts have no place in the file
    (a notebook's outputs are rewritten whole, by `sandrun.notebook_update`)."""
    code: Callable[[str], str] = _whole
    """The part of a cell's source that is code: what rewriting its expected texts leaves as it was (a
    percent cell's expectations are comments at the end of its source)."""


FORMATS = {
    "yaml": "yaml_recipe", "percent": "percent", "markdown": "markdown_doc", "rst": "rst", "ipynb": "ipynb",
}  # fmt: skip
"""Format name (`Recipe.format`) -> the module of `sandrun.readers` that defines it (only that one is
imported)."""

SUFFIXES = {
    ".yaml": "yaml", ".yml": "yaml", ".py": "percent", ".md": "markdown", ".ipynb": "ipynb", ".rst": "rst",
}  # fmt: skip
"""Recipe suffix -> the name of its format."""


def recipe_format(name: str) -> Format:
    """The format named `name` (a `Recipe.format`)."""
    found: Format = import_module(f"sandrun.readers.{FORMATS[name]}").FORMAT
    return found


def _parser(suffix: str) -> Parser | None:
    name = SUFFIXES.get(suffix)
    return None if name is None else recipe_format(name).parse


SUPPORTED_SUFFIXES = tuple(SUFFIXES)


def load_recipe(path: str | Path, check_outputs: bool = False, match: MatchMode | None = None) -> Recipe:
    """Read the recipe at `path`, choosing the format by suffix. Raises `RecipeError` for any problem.

    `check_outputs`: a notebook's stored outputs become its expectations (other formats ignore it).
    `match`: the match mode of expected texts that name none (a project's default; None: `ellipsis`)."""
    name = str(path)
    parser = _parser(Path(name).suffix.lower())
    if parser is not None and check_outputs and Path(name).suffix.lower() == ".ipynb":
        from sandrun.readers import ipynb

        parser = functools.partial(ipynb.parse, check_outputs=True)
    if parser is None:
        raise RecipeError(
            name,
            None,
            f"cannot tell the recipe format from the suffix {Path(name).suffix or '(none)'!r}",
            hint=f"use one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    try:
        data = Path(name).read_bytes()
    except FileNotFoundError:
        raise RecipeError(name, None, "no such file") from None
    except IsADirectoryError:
        raise RecipeError(name, None, "is a directory, not a recipe file") from None
    except OSError as exc:
        raise RecipeError(name, None, f"cannot read the file: {exc.strerror}") from None
    if match is None:
        return parse_bytes(data, name, parser)
    from sandrun.expect import defaulting_match

    with defaulting_match(match):
        return parse_bytes(data, name, parser)


def parse_bytes(data: bytes, path: str, parser: Parser) -> Recipe:
    """Decode `data` as UTF-8 text and hand it to `parser`, refusing empty, binary and undecodable files."""
    if not data.strip():
        raise RecipeError(path, 1, "the file is empty", hint="a recipe needs at least one cell")
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise RecipeError(path, line, "this looks like a binary file (it contains a NUL byte), not a recipe")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecipeError(
            path, line, f"invalid UTF-8 (byte 0x{data[exc.start]:02x})", hint="save the file as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    return parser(text, path, hashlib.sha256(data).hexdigest())

"""Reading recipe files into `Recipe`s: one module per format, chosen by the file's suffix.

Every reader is a function `parse(text, path, sha256) -> Recipe` that raises `RecipeError` with the line
where the problem is. `load_recipe` does what they share: reading bytes, refusing binary or non-UTF-8 files,
and picking the reader. A reader reads no other file, but for Sphinx pages (reST, and Markdown with MyST's
doctest directives): their `conf.py`, as text, for its doctest global setup (`sphinx_conf`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

from sandrun.errors import RecipeError
from sandrun.model import MatchMode, Recipe

Parser = Callable[[str, str, str], Recipe]


READERS = {
    ".yaml": "yaml_recipe", ".yml": "yaml_recipe", ".py": "percent", ".md": "markdown_doc", ".ipynb": "ipynb",
    ".rst": "rst",
}  # fmt: skip
"""Recipe suffix -> the module of `sandrun.readers` that parses it (only that one is imported)."""


def _parser(suffix: str) -> Parser | None:
    from importlib import import_module

    module = READERS.get(suffix)
    if module is None:
        return None
    parser: Parser = import_module(f"sandrun.readers.{module}").parse
    return parser


SUPPORTED_SUFFIXES = (".yaml", ".yml", ".py", ".md", ".ipynb", ".rst")


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

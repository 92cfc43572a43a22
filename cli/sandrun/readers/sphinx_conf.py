"""Sphinx's `doctest_global_setup` and `doctest_global_cleanup`, read from the `conf.py` of the docs a
reStructuredText document belongs to, so that its examples see what Sphinx's doctest builder gives them.

conf.py is Python of the project's, and nothing a recipe brings is run on the host: it is never imported
or executed here. Its text is parsed (`ast`), and a name is taken only where every assignment to it is a
plain string literal at the top level (`doctest_global_setup = '''import numpy as np'''`, the last one
wins). Anything else (a computed value, an f-string, `textwrap.dedent(...)`, an assignment inside an `if`,
an import of the name) leaves the name unused, with a warning at its line that says why. The code itself
runs in the sandbox, as the document's first and last cells.

Which conf.py: the nearest, looking from the document's directory up to the top of its project: the
directory that holds `.git`, `.hg`, `pyproject.toml`, `setup.py` or `setup.cfg` is the last one searched.
A conf.py that is a symbolic link, not a regular file, or (above the document's directory) owned by
neither the user nor root is not read, with a warning: on a shared machine another user could leave one
in `/tmp` for every document below it.
"""

from __future__ import annotations

import ast
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sandrun.model import Cell
from sandrun.safefs import owned_by_user_or_root

NAMES = ("doctest_global_setup", "doctest_global_cleanup")
TOPS = (".git", ".hg", "pyproject.toml", "setup.py", "setup.cfg")
"""A directory holding one of these is a project's top: the search for conf.py does not go above it."""
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class GlobalCode:
    """What a document's conf.py gives its examples."""

    path: str
    """conf.py, as a path from where the document was named (`docs/conf.py` for `docs/index.rst`)."""
    code: dict[str, tuple[str, str, int]]
    """The names of `NAMES` it sets, to their code, `path` and the 1-based line where the string starts."""
    warnings: tuple[str, ...] = ()
    """Why a name it sets is not used (`path:line: what`)."""


def with_global_code(cells: Sequence[Cell], document: str) -> tuple[list[Cell], tuple[str, ...]]:
    """`cells`, the examples of `document`, between the cells of its conf.py's doctest global setup and
    cleanup (named after them, at their lines in conf.py), numbered again; and the warnings about conf.py."""
    conf = global_code(document)
    if conf is None:
        return list(cells), ()
    setup, cleanup = ([Cell(0, *conf.code[name], name=name)] if name in conf.code else [] for name in NAMES)
    around = [*setup, *cells, *cleanup]
    return [replace(cell, index=index) for index, cell in enumerate(around)], conf.warnings


def global_code(document: str) -> GlobalCode | None:
    """The doctest global setup and cleanup of the nearest conf.py above `document` (see the module's
    docstring); None if there is no conf.py, or it sets neither name."""
    start = Path(os.path.abspath(document)).parent
    for up, place in enumerate((start, *start.parents)):
        shown = os.path.normpath(os.path.join(os.path.dirname(document), *[".."] * up, "conf.py"))
        data = _read(place / "conf.py", shown, foreign_refused=up > 0)
        if isinstance(data, str):
            return GlobalCode(shown, {}, (data,))
        if data is not None:
            return _code(data, shown) if b"doctest_global_" in data else None
        if any((place / top).exists() for top in TOPS):
            return None
    return None


def _read(path: Path, shown: str, foreign_refused: bool) -> bytes | str | None:
    """conf.py's bytes; None if there is none; a warning (text) if there is one that is not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symbolic link
        why = "it is a symbolic link" if os.path.islink(path) else exc.strerror
        return f"{shown}: not read for its doctest_global_setup: {why}"
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"{shown}: not read for its doctest_global_setup: it is not a regular file"
        if foreign_refused and not owned_by_user_or_root(info.st_uid):
            return (
                f"{shown}: not read for its doctest_global_setup: it belongs to uid {info.st_uid}, neither "
                "you nor root, in a directory above the document's (another user could have put it there)"
            )
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return f"{shown}: not read for its doctest_global_setup: it is larger than {MAX_BYTES} bytes"
    return data


def _code(data: bytes, shown: str) -> GlobalCode | None:
    """The names of `NAMES` that the conf.py whose bytes are `data` sets to plain strings."""
    try:
        tree = ast.parse(data, shown)
    except (SyntaxError, ValueError) as exc:
        where = f":{exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        return GlobalCode(shown, {}, (f"{shown}{where}: not read for its doctest_global_setup: {exc}",))
    plain: dict[int, tuple[str, str, int]] = {}  # id of a Name node -> its literal's text, conf.py, line
    for statement in tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        value = getattr(statement, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            plain.update((id(target), (value.value, shown, value.lineno)) for target in targets)
    code: dict[str, tuple[str, str, int]] = {}
    warnings: list[str] = []
    for name in NAMES:
        bindings = sorted(_bindings(tree, name), key=lambda node: (node[1], id(node[0])))
        odd = next((line for node, line in bindings if id(node) not in plain), None)
        if odd is not None:
            warnings.append(
                f"{shown}:{odd}: `{name}` is not set to a plain string literal here, so sandrun does not "
                "use it (conf.py is never run on the host): write it as one string, or set the examples "
                "up in a `.. testsetup::` block"
            )
        elif bindings and plain[id(bindings[-1][0])][0].strip():  # Sphinx's default is ''
            code[name] = plain[id(bindings[-1][0])]
    return GlobalCode(shown, code, tuple(warnings)) if code or warnings else None


def _bindings(tree: ast.Module, name: str) -> list[tuple[ast.AST, int]]:
    """Every place `name` is bound in the module (assigned, imported, a loop target...), with its line."""
    found: list[tuple[ast.AST, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            found.append((node, node.lineno))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found += [(node, node.lineno) for alias in node.names if (alias.asname or alias.name) == name]
    return found

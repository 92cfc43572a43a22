"""Sphinx's `:pyversion:` option of its doctest directives (`:pyversion: > 3.10`): the Pythons a block is
for, as PEP 440 specifiers (`~=`, `==`, `!=`, `<=`, `>=`, `<`, `>`, `===`; several joined by commas must
all hold), as Sphinx reads it.

The block is skipped where its interpreter is not one of them. That interpreter is the sandbox's, which
the host does not know before the run (a recipe's `python:`, `--python`, Modal's image): so the option
becomes a `Condition` on `sys.version_info`, evaluated inside the sandbox as a `:skipif:` is. Versions are
release numbers (`3`, `3.10`, `3.10.2`; `3.12.*` after `==` and `!=`), compared padded with zeros, as
PEP 440 compares the interpreter's `major.minor.micro`.
"""

from __future__ import annotations

import re

from sandrun.errors import RecipeError
from sandrun.model import Condition

_SPECIFIER = re.compile(r"\s*(~=|===|==|!=|<=|>=|<|>)\s*([^\s,]+)\s*")
_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_VERSION = '__import__("sys").version_info[:3]'
_HINT = "write PEP 440 specifiers of release numbers, as Sphinx reads them: `> 3.10`, `>= 3.9, < 3.13`"


def skip_condition(spec: str, path: str, line: int) -> Condition:
    """The condition under which a block with `:pyversion: spec` (at 1-based `line` of `path`) is skipped:
    the sandbox's Python does not satisfy `spec`. Raises `RecipeError` when `spec` cannot be read."""
    tests = [_test(part, spec, path, line) for part in spec.split(",")]
    text = f"not ({' and '.join(tests)})"
    described = f"`:pyversion: {spec.strip()}` (line {line}) does not hold for the sandbox's Python"
    return Condition(text, line, described)


def _test(part: str, spec: str, path: str, line: int) -> str:
    """One specifier as a Python expression on the running interpreter's version."""
    found = _SPECIFIER.fullmatch(part)
    if found is None:
        raise RecipeError(path, line, f"cannot read `:pyversion: {spec.strip()}`", _HINT)
    operator, version = found[1], found[2]
    if operator == "===":  # arbitrary equality: the version's text as Sphinx writes it (`3.12.1`)
        return f"'%d.%d.%d' % {_VERSION} == {version!r}"
    wildcard = operator in ("==", "!=") and version.endswith(".*")
    release = version[:-2] if wildcard else version
    if not _RELEASE.fullmatch(release) or (operator == "~=" and "." not in release):
        why = "`~=` needs at least two numbers, e.g. `~= 3.10`" if operator == "~=" else _HINT
        raise RecipeError(
            path, line, f"cannot read the version {version!r} of `:pyversion: {spec.strip()}`", why
        )
    numbers = tuple(int(n) for n in release.split("."))
    width = max(3, len(numbers))
    running = _VERSION if width == 3 else f"({_VERSION} + {(0,) * (width - 3)!r})"
    if wildcard:  # a prefix of the release: `== 3.12.*` is 3.12.0, 3.12.1...
        return f"{running}[:{len(numbers)}] {operator} {numbers!r}"
    padded = numbers + (0,) * (width - len(numbers))
    if operator == "~=":  # compatible release: at least this, with the same numbers but the last
        return f"({running} >= {padded!r} and {running}[:{len(numbers) - 1}] == {numbers[:-1]!r})"
    return f"{running} {operator} {padded!r}"

"""YAML recipes: a mapping with settings and a list of `cells`, each a string of code or a mapping.

The document is composed into nodes (by `yaml_nodes`, with PyYAML's safe loader, so no tags run code) and then
walked by hand, so that every error and every cell knows its line in the file (counted as editors count them:
YAML also breaks lines at NEL and the Unicode separators, which an editor shows inside a line).

    name: Quickstart           # optional
    description: ...           # optional
    timeout: 30                # default seconds per cell
    env: {GREETING: hello}     # variables inside the sandbox
    network: false             # may cells use the network? (default: no)
    python: /usr/bin/python3   # interpreter inside the sandbox (default: the one running sandrun)
    files: [data.csv]          # copied into the work directory, relative to this file
    packages: [numpy>=2]       # installed once into a cached environment, with network, before the run
    backend: modal             # where it runs, unless the command line says --backend
    cells:
      - print("hi")            # a cell as a plain string
      - name: divide           # or as a mapping
        code: 1 / 0
        timeout: 5
        skip: false
        expect: {error: ZeroDivisionError}
      - code: print(6 * 7)
        expect:
          stdout: "42"         # also stderr, value (the repr of a trailing expression)
          match: exact         # ellipsis (default: `...` matches anything), exact, regex, whitespace
"""

from __future__ import annotations

import difflib
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from sandrun.errors import RecipeError
from sandrun.expect import Written, expectation, seconds
from sandrun.model import Cell, Expectation, Recipe
from sandrun.readers import Format
from sandrun.readers.lines import LineIndex
from sandrun.readers.yaml_nodes import compose, construct
from sandrun.readers.yaml_rewrite import rewrite

RECIPE_KEYS = (
    "name", "description", "timeout", "env", "network", "python", "packages", "files", "backend", "cells"
)  # fmt: skip
CELL_KEYS = ("code", "name", "timeout", "skip", "expect")
EXPECT_KEYS = ("error", "error_message", "stdout", "stderr", "value", "match")


class _Reader:
    """Walks composed YAML nodes, turning them into model objects with file:line on every error."""

    def __init__(self, path: str, lines: LineIndex) -> None:
        self.path = path
        self.lines = lines

    def fail(self, node: yaml.Node, message: str, hint: str | None = None) -> RecipeError:
        """A RecipeError at the node's line."""
        return RecipeError(self.path, self.lines.line_of(node.start_mark.index), message, hint)

    def code_line(self, node: yaml.Node) -> int:
        """The file line of a scalar's first character: block scalars (`|`, `>`) start on the next line."""
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        return self.lines.line_of(node.start_mark.index) + (1 if block else 0)

    def mapping(self, node: yaml.Node, what: str, keys: tuple[str, ...]) -> dict[str, yaml.Node]:
        """A mapping node's items by key, refusing unknown or repeated keys."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(
                node, f"{what} must be a mapping, not {describe(node)}", f"valid keys: {', '.join(keys)}"
            )
        items: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = (f"did you mean {close[0]!r}? " if close else "") + f"valid keys: {', '.join(keys)}"
                raise self.fail(key_node, f"unknown key {key!r} in {what}", hint)
            if key in items:
                raise self.fail(key_node, f"key {key!r} appears twice in {what}")
            items[key] = value_node
        return items

    def scalar(self, node: yaml.Node, what: str, types: tuple[type, ...], expected: str) -> object:
        """The value of a scalar node, which must be one of `types` (booleans only if `bool` is listed)."""
        try:
            value = construct(node) if isinstance(node, yaml.ScalarNode) else None
        except (yaml.YAMLError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.fail(node, f"{what}: {problem}", f"write {expected} without a YAML tag") from None
        wrong_bool = isinstance(value, bool) and bool not in types
        if not isinstance(node, yaml.ScalarNode) or wrong_bool or not isinstance(value, types):
            raise self.fail(node, f"{what} must be {expected}, not {describe(node)}")
        return value

    def text(self, node: yaml.Node, what: str) -> str:
        """A string scalar."""
        return str(self.scalar(node, what, (str,), "a string"))

    def seconds(self, node: yaml.Node, what: str) -> float:
        """A positive number of seconds, at most MAX_TIMEOUT."""
        value = float(self.scalar(node, what, (int, float), "a number of seconds"))  # type: ignore[arg-type]
        return seconds(self.path, self.lines.line_of(node.start_mark.index), value, what)

    def env(self, node: yaml.Node) -> dict[str, str]:
        """A mapping of variable names to string values (numbers and booleans are turned into text)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"env must be a mapping of NAME: value, not {describe(node)}")
        env = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, "an env variable name")
            if not key or "=" in key or "\0" in key:
                raise self.fail(key_node, f"{key!r} is not a valid environment variable name")
            value = self.scalar(value_node, f"env {key}", (str, int, float, bool), "a string or a number")
            if "\0" in str(value):
                raise self.fail(
                    value_node, f"env {key} contains a NUL character, which no environment can hold"
                )
            env[key] = str(value)
        return env

    def packages(self, node: yaml.Node) -> tuple[str, ...]:
        """pip requirement strings, e.g. `numpy>=2`, `rich==13.7.1`."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(
                node, f"packages must be a list, not {describe(node)}", "e.g. packages: [numpy>=2]"
            )
        names = [self.text(item, "a package requirement").strip() for item in node.value]
        for item, name in zip(node.value, names, strict=True):
            if not name or name.startswith("-"):
                raise self.fail(
                    item, f"{name!r} is not a requirement", "write e.g. numpy>=2 (pip options are not taken)"
                )
        return tuple(names)

    def files(self, node: yaml.Node) -> tuple[str, ...]:
        """Relative paths of existing files next to the recipe, that stay inside its directory."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(
                node, f"files must be a list of paths, not {describe(node)}", "e.g. files: [data.csv]"
            )
        names = []
        base = Path(self.path).parent
        for item in node.value:
            name = self.text(item, "a file name")
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise self.fail(item, f"file {name!r} must be a relative path inside the recipe's directory")
            if not (base / relative).is_file():
                raise self.fail(item, f"file {name!r} does not exist next to the recipe (looked in {base})")
            if (
                not (base / relative).resolve().is_relative_to(base.resolve())
                or (base / relative).is_symlink()
            ):
                raise self.fail(
                    item, f"file {name!r} is a symbolic link, or lies behind one, out of the directory"
                )
            names.append(str(relative))
        return tuple(names)

    def cell(self, node: yaml.Node, index: int) -> Cell:
        """One cell: a string of code, or a mapping with `code` and options."""
        what = f"cell {index + 1}"
        if isinstance(node, yaml.ScalarNode):
            return Cell(index=index, source=self.code(node, what), path=self.path, line=self.code_line(node))
        items = self.mapping(node, what, CELL_KEYS)
        if "code" not in items:
            raise self.fail(node, f"{what} has no code", "add a `code:` key holding the Python to run")
        code_node = items["code"]
        return Cell(
            index=index,
            source=self.code(code_node, what),
            path=self.path,
            line=self.code_line(code_node),
            name=self.text(items["name"], f"{what} name") if "name" in items else None,
            timeout=self.seconds(items["timeout"], f"{what} timeout") if "timeout" in items else None,
            skip=bool(self.scalar(items["skip"], f"{what} skip", (bool,), "true or false"))
            if "skip" in items
            else False,
            expect=self.expectation(items["expect"], what) if "expect" in items else Expectation(),
        )

    def code(self, node: yaml.Node, what: str) -> str:
        """A cell's code: a non-empty string."""
        source = self.scalar(node, f"{what} code", (str,), "a string of Python code")
        if not str(source).strip():
            raise self.fail(node, f"{what} has no code (it is empty)", "remove the cell or give it some code")
        return str(source)

    def expectation(self, node: yaml.Node, what: str) -> Expectation:
        """A cell's `expect` mapping, checked by the one validation every reader uses."""
        items = self.mapping(node, f"{what} expect", EXPECT_KEYS)
        written = {}
        for key, value in items.items():
            if key in ("stdout", "stderr", "value"):
                text = str(self.scalar(value, f"{what} expected {key}", (str, int, float, bool), "a string"))
                span = (value.start_mark.index, value.end_mark.index)
            else:
                text, span = self.text(value, f"{what} {key}"), None
            written[key] = Written(text, self.code_line(value), span)
        return expectation(self.path, written)


def describe(node: yaml.Node) -> str:
    """A node's kind in words, for error messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    try:
        value = construct(node)
    except (yaml.YAMLError, ValueError):
        return f"{node.tag} {node.value!r}"
    return "nothing (null)" if value is None else f"{type(value).__name__} {node.value!r}"


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a YAML recipe. Raises `RecipeError` with the line of the first problem."""
    lines = LineIndex(text)
    try:
        root = compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = lines.line_of(mark.index) if mark else None
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            message += f" ({exc.context} that starts at line {lines.line_of(exc.context_mark.index)})"
        raise RecipeError(path, line, message) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow anywhere, even quoted
        message = f"invalid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}"
        hint = 'write it as an escape in a double-quoted string, e.g. "\\x01"'
        raise RecipeError(path, lines.line_of(exc.position), message, hint) from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise RecipeError(path, None, f"invalid YAML: {message}") from None
    reader = _Reader(path, lines)
    if root is None:
        raise RecipeError(path, 1, "the file holds no YAML document", hint="a recipe needs a `cells:` list")
    items = reader.mapping(root, "the recipe", RECIPE_KEYS)
    if "cells" not in items:
        raise reader.fail(root, "the recipe has no `cells:` list", "add `cells:` with one item per cell")
    cells_node = items["cells"]
    if not isinstance(cells_node, yaml.SequenceNode) or not cells_node.value:
        raise reader.fail(cells_node, "`cells` must be a non-empty list", "e.g. cells:\n    - print('hi')")
    cells = tuple(reader.cell(node, i) for i, node in enumerate(cells_node.value))
    return Recipe(path=path, sha256=sha256, format="yaml", cells=cells, **_settings(reader, items))


FORMAT = Format(parse, rewrite=rewrite)
"""YAML recipes: expected texts are scalars."""


SETTING_KEYS = tuple(key for key in RECIPE_KEYS if key != "cells")
"""The recipe-wide settings, which Markdown front matter (under `sandrun:`) may give too."""


def front_matter(text: str, path: str, key: str = "sandrun", what: str | None = None) -> dict[str, Any]:
    """The settings under `key` in a YAML document (a Markdown file's front matter, with blank lines in
    place of what comes before it, so that lines count from the file's start), checked as a YAML
    recipe's top-level keys are: keyword arguments for `Recipe`. Other keys are other tools' business."""
    lines = LineIndex(text)
    root = _compose_embedded(text, path, lines, "invalid YAML front matter")
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            reader = _Reader(path, lines)
            where = what or f"the front matter's {key}"
            return _settings(reader, reader.mapping(value_node, where, SETTING_KEYS))
    return {}


def _compose_embedded(text: str, path: str, lines: LineIndex, what: str) -> yaml.Node | None:
    """The YAML node tree of settings embedded in another format; a RecipeError `what: problem` at its
    line when it is not YAML."""
    try:
        return compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = lines.line_of(mark.index) if mark else None
        message = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise RecipeError(path, line, f"{what}: {message}") from None


def _settings(reader: _Reader, items: dict[str, yaml.Node]) -> dict[str, Any]:
    """The recipe-wide settings among a mapping's items, checked."""
    return dict(
        name=reader.text(items["name"], "name") if "name" in items else None,
        description=reader.text(items["description"], "description") if "description" in items else None,
        timeout=reader.seconds(items["timeout"], "timeout") if "timeout" in items else None,
        env=reader.env(items["env"]) if "env" in items else {},
        network=bool(reader.scalar(items["network"], "network", (bool,), "true or false"))
        if "network" in items
        else None,
        python=reader.text(items["python"], "python") if "python" in items else None,
        files=reader.files(items["files"]) if "files" in items else (),
        packages=reader.packages(items["packages"]) if "packages" in items else (),
        backend=reader.text(items["backend"], "backend") if "backend" in items else None,
    )


def read_settings(text: str, path: str, what: str = "the settings") -> dict[str, Any]:
    """Recipe settings written as YAML inside another format (a reST `.. sandrun-settings:` comment): the
    YAML recipe's top-level keys but `cells`, checked as there. `text` keeps the file's line numbering (the
    lines before it left empty)."""
    lines = LineIndex(text)
    root = _compose_embedded(text, path, lines, f"invalid YAML in {what}")
    if root is None:
        return {}
    reader = _Reader(path, lines)
    return _settings(reader, reader.mapping(root, what, SETTING_KEYS))

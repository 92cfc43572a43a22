"""The YAML reader: valid recipes become `Recipe`s with exact lines; every mistake is a `RecipeError` at
`path:LINE:` with a message (and, where it helps, a hint) that says how to fix it. `load_recipe` is
exercised for what all readers share: empty, binary, undecodable, missing and unsupported files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from sandrun.errors import RecipeError
from sandrun.model import Cell, CellKind, Expectation, Recipe
from sandrun.readers import load_recipe, yaml_nodes
from sandrun.readers.yaml_recipe import CELL_KEYS, RECIPE_KEYS, parse

WriteRecipe = Callable[[str, str], Path]
RECIPE_HINT = f"valid keys: {', '.join(RECIPE_KEYS)}"
CELL_HINT = f"valid keys: {', '.join(CELL_KEYS)}"


@pytest.fixture(autouse=True, params=["libyaml", "pure-python"])
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: events read by libyaml, then by the pure-Python loader (same lines and messages)."""
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_nodes, "_FAST", None)
    elif yaml_nodes._FAST is None:
        pytest.skip("PyYAML was built without libyaml")


def load(write_recipe: WriteRecipe, text: str, name: str = "recipe.yaml") -> tuple[Recipe, list[str]]:
    """Write and load a recipe; also return the file's lines as an editor numbers them."""
    path = write_recipe(name, text)
    return load_recipe(path), path.read_text(encoding="utf-8").splitlines()


def assert_cell_line(cell: Cell, file_lines: list[str]) -> None:
    """The cell's first code line is on line `cell.line` of the file."""
    first = cell.source.splitlines()[0].strip()
    assert first, f"cell {cell.index} starts with a blank line; pick a different example"
    assert first in file_lines[cell.line - 1], (cell.line, file_lines[cell.line - 1], first)


def recipe_error(write_recipe: WriteRecipe, text: str, name: str = "recipe.yaml") -> tuple[str, str]:
    """The str() of the RecipeError that loading `text` raises, and the path it was written to."""
    path = write_recipe(name, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return str(info.value), str(path)


# --- valid recipes -------------------------------------------------------------------------------------


FULL = """\
# A comment first, so that nothing is on line 1 by accident.
name: Full example
description: Every setting at once.
timeout: 30
env:
  GREETING: hello
  COUNT: 3
  RATIO: 1.5
cells:
  - print("a plain string cell")
  - name: block scalar
    code: |
      x = 1
      y = x + 1
    timeout: 5
  - name: plain scalar on the same line
    code: z = 3
    skip: true
  - name: divide
    code: |
      1 / 0
    expect:
      error: ZeroDivisionError
  - code: import json; json.loads("{")
    expect: {error: json.JSONDecodeError}
    skip: false
    timeout: 0.25
"""


def test_full_recipe_settings(write_recipe: WriteRecipe) -> None:
    path = write_recipe("full.yaml", FULL)
    recipe = load_recipe(path)
    assert recipe.path == str(path)
    assert recipe.format == "yaml"
    assert recipe.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recipe.name == "Full example"
    assert recipe.description == "Every setting at once."
    assert recipe.timeout == 30.0
    assert isinstance(recipe.timeout, float)
    assert dict(recipe.env) == {"GREETING": "hello", "COUNT": "3", "RATIO": "1.5"}
    assert all(isinstance(value, str) for value in recipe.env.values())
    assert [c.index for c in recipe.cells] == [0, 1, 2, 3, 4]
    assert all(c.kind is CellKind.CODE and c.path == str(path) for c in recipe.cells)


def test_full_recipe_cells(write_recipe: WriteRecipe) -> None:
    recipe, lines = load(write_recipe, FULL)
    plain, block, same_line, divide, dotted = recipe.cells

    assert plain.source == 'print("a plain string cell")'
    assert (plain.name, plain.timeout, plain.skip, plain.expect) == (None, None, False, Expectation())
    assert plain.label == "cell 1"

    assert block.source == "x = 1\ny = x + 1\n"
    assert (block.name, block.timeout, block.skip) == ("block scalar", 5.0, False)
    assert block.expect == Expectation(error=None)

    assert same_line.source == "z = 3"
    assert same_line.skip is True
    assert same_line.label == "plain scalar on the same line"

    assert divide.source == "1 / 0\n"
    assert divide.expect == Expectation(error="ZeroDivisionError")

    assert dotted.expect == Expectation(error="json.JSONDecodeError")
    assert (dotted.skip, dotted.timeout) == (False, 0.25)

    assert [c.line for c in recipe.cells] == [10, 13, 17, 21, 24]
    for cell in recipe.cells:
        assert_cell_line(cell, lines)
    assert recipe.cells[1].location == f"{recipe.path}:13"


@pytest.mark.parametrize(
    ("text", "source", "line"),
    [
        pytest.param("cells:\n  - code: |\n      a = 1\n      b = 2\n", "a = 1\nb = 2\n", 3, id="literal"),
        pytest.param("cells:\n  - code: |-\n      a = 1\n", "a = 1", 3, id="literal-strip"),
        pytest.param("cells:\n  - code: |+\n      a = 1\n\n", "a = 1\n\n", 3, id="literal-keep"),
        pytest.param("cells:\n  - code: >\n      a = 1\n", "a = 1\n", 3, id="folded"),
        pytest.param("cells:\n  - code: |  # why\n      a = 1\n", "a = 1\n", 3, id="literal-comment"),
        pytest.param("cells:\n  - code: |1\n      a = 1\n", " a = 1\n", 3, id="literal-indent-indicator"),
        pytest.param("cells:\n  - |\n    a = 1\n", "a = 1\n", 3, id="plain-cell-literal"),
        pytest.param("cells:\n  - a = 1\n", "a = 1", 2, id="plain-cell-plain"),
        pytest.param("cells:\n  - 'a = 1'\n", "a = 1", 2, id="plain-cell-quoted"),
        pytest.param("cells:\n  - code: a = 1\n", "a = 1", 2, id="code-same-line"),
        pytest.param('cells:\n  - code: "a = 1"\n', "a = 1", 2, id="code-double-quoted"),
        pytest.param("cells:\n  - code:\n      a = 1\n", "a = 1", 3, id="code-next-line"),
        pytest.param("cells:\n  - {name: n, code: 'a = 1'}\n", "a = 1", 2, id="flow-mapping"),
        pytest.param(
            "# one\n# two\ncells:\n\n  - name: later\n\n    code: |\n\n      a = 1\n",
            "\na = 1\n",
            8,
            id="blank-lines-everywhere",
        ),
        pytest.param("cells:\r\n  - code: |\r\n      a = 1\r\n", "a = 1\n", 3, id="crlf"),
    ],
)
def test_cell_line_is_first_code_line(write_recipe: WriteRecipe, text: str, source: str, line: int) -> None:
    path = write_recipe("lines.yaml", "")
    path.write_bytes(text.encode("utf-8"))  # byte-exact: keep CRLF as written
    recipe = load_recipe(path)
    (cell,) = recipe.cells
    assert cell.source == source
    assert cell.line == line
    file_lines = path.read_text(encoding="utf-8").splitlines()
    # Line N of the source is line `cell.line + N - 1` of the file.
    for offset, code_line in enumerate(source.splitlines()):
        if code_line.strip():
            assert code_line.strip() in file_lines[cell.line - 1 + offset]


def test_multi_line_block_keeps_every_line_in_place(write_recipe: WriteRecipe) -> None:
    recipe, lines = load(
        write_recipe,
        """\
        cells:
          - setup = True
          - name: three lines
            code: |
              first = 1
              second = 2
              third = 3
          - last = 4
        """,
    )
    cells = recipe.cells
    assert [c.line for c in cells] == [2, 5, 8]
    for i, code_line in enumerate(cells[1].source.splitlines()):
        assert lines[cells[1].line - 1 + i].strip() == code_line
    assert_cell_line(cells[2], lines)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello"),
        ("'quoted: yes'", "quoted: yes"),
        ("42", "42"),
        ("-7", "-7"),
        ("2.5", "2.5"),
        ("'007'", "007"),
        ("''", ""),
    ],
)
def test_env_values_become_strings(write_recipe: WriteRecipe, value: str, expected: str) -> None:
    recipe, _ = load(write_recipe, f"env:\n  NAME: {value}\ncells:\n  - pass\n")
    assert dict(recipe.env) == {"NAME": expected}


def test_defaults_when_settings_are_absent(write_recipe: WriteRecipe) -> None:
    recipe, _ = load(write_recipe, "cells:\n  - pass\n")
    assert (recipe.name, recipe.description, recipe.timeout) == (None, None, None)
    assert dict(recipe.env) == {}
    (cell,) = recipe.cells
    assert (cell.name, cell.timeout, cell.skip, cell.expect, cell.tags) == (
        None,
        None,
        False,
        Expectation(),
        (),
    )


def test_parse_directly_keeps_path_and_sha() -> None:
    recipe = parse("cells:\n  - pass\n", "some/where.yaml", "ab" * 32)
    assert (recipe.path, recipe.sha256, recipe.format) == ("some/where.yaml", "ab" * 32, "yaml")
    assert recipe.cells[0].path == "some/where.yaml"


@pytest.mark.parametrize("suffix", [".yml", ".YAML"])
def test_other_yaml_suffixes(write_recipe: WriteRecipe, suffix: str) -> None:
    recipe, _ = load(write_recipe, "cells:\n  - pass\n", name=f"r{suffix}")
    assert recipe.format == "yaml"
    assert [c.source for c in recipe.cells] == ["pass"]


# --- errors at path:LINE: --------------------------------------------------------------------------------

ERRORS = [
    pytest.param(
        "name: demo\ncell:\n  - pass\n",
        2,
        [
            "unknown key 'cell' in the recipe",
            "did you mean 'cells'?",
            RECIPE_HINT,
        ],
        id="unknown-top-key-close-match",
    ),
    pytest.param(
        "cells:\n  - pass\ntimout: 3\n",
        3,
        ["unknown key 'timout'", "did you mean 'timeout'?", RECIPE_HINT],
        id="unknown-top-key-typo",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    nmae: x\n",
        3,
        [
            "unknown key 'nmae' in cell 1",
            "did you mean 'name'?",
            CELL_HINT,
        ],
        id="unknown-cell-key",
    ),
    pytest.param(
        "cells:\n  - pass\n  - code: pass\n    expect:\n      eror: ValueError\n",
        5,
        ["unknown key 'eror' in cell 2 expect", "did you mean 'error'?", "valid keys: error"],
        id="unknown-expect-key",
    ),
    pytest.param(
        "name: t\ntimeout: soon\ncells:\n  - pass\n",
        2,
        ["timeout must be a number of seconds", "'soon'"],
        id="timeout-string",
    ),
    pytest.param(
        "timeout: true\ncells:\n  - pass\n",
        1,
        ["timeout must be a number of seconds", "bool"],
        id="timeout-bool",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    timeout: [1]\n",
        3,
        ["cell 1 timeout must be a number of seconds, not a list"],
        id="cell-timeout-list",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    skip: 3\n",
        3,
        ["cell 1 skip must be true or false", "int '3'"],
        id="skip-int",
    ),
    pytest.param(
        "name: x\ncells: hello\n",
        2,
        ["`cells` must be a non-empty list", "hint: e.g. cells:"],
        id="cells-not-a-list",
    ),
    pytest.param(
        "name: x\ncells: {a: 1}\n",
        2,
        ["`cells` must be a non-empty list"],
        id="cells-mapping",
    ),
    pytest.param("name: x\ncells: []\n", 2, ["`cells` must be a non-empty list"], id="cells-empty"),
    pytest.param(
        "name: x\ndescription: y\n",
        1,
        ["the recipe has no `cells:` list", "hint: add `cells:`"],
        id="no-cells",
    ),
    pytest.param(
        "cells:\n  - pass\nname: [1]\n",
        3,
        ["name must be a string, not a list"],
        id="name-list",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    name: [1]\n",
        3,
        ["cell 1 name must be a string, not a list"],
        id="cell-name-list",
    ),
    pytest.param(
        "description: 3\ncells:\n  - pass\n",
        1,
        ["description must be a string", "int '3'"],
        id="description-int",
    ),
    pytest.param(
        "cells:\n  - pass\n  - name: x\n",
        3,
        ["cell 2 has no code", "hint: add a `code:` key"],
        id="cell-without-code",
    ),
    pytest.param(
        "cells:\n  - code: ''\n",
        2,
        ["cell 1 has no code (it is empty)", "hint: remove the cell or give it some code"],
        id="empty-code",
    ),
    pytest.param(
        "cells:\n  - pass\n  - code: |\n\n      \n",
        3,
        ["cell 2 has no code (it is empty)"],
        id="blank-block-code",
    ),
    pytest.param(
        "cells:\n  - '   '\n",
        2,
        ["cell 1 has no code (it is empty)"],
        id="blank-plain-cell",
    ),
    pytest.param(
        "cells:\n  - 42\n",
        2,
        ["cell 1 code must be a string of Python code", "int '42'"],
        id="code-int",
    ),
    pytest.param(
        "cells:\n  - code:\n    name: x\n",
        2,
        ["cell 1 code must be a string of Python code, not nothing (null)"],
        id="code-null",
    ),
    pytest.param(
        "cells:\n  - [print(1)]\n",
        2,
        ["cell 1 must be a mapping, not a list", CELL_HINT],
        id="cell-list",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    expect:\n      error: not a name\n",
        4,
        ["'not a name' is not an exception name", "hint: e.g. ZeroDivisionError"],
        id="expect-error-spaces",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    expect: {error: ValueError.}\n",
        3,
        ["'ValueError.' is not an exception name"],
        id="expect-error-trailing-dot",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    expect:\n      error: 1Error\n",
        4,
        ["'1Error' is not an exception name"],
        id="expect-error-digit",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    expect: ValueError\n",
        3,
        ["cell 1 expect must be a mapping", "valid keys: error"],
        id="expect-not-mapping",
    ),
    pytest.param(
        "- print(1)\n- print(2)\n",
        1,
        ["the recipe must be a mapping, not a list", RECIPE_HINT],
        id="top-list",
    ),
    pytest.param(
        "\n\nprint(1)\n",
        3,
        ["the recipe must be a mapping, not str 'print(1)'"],
        id="top-scalar",
    ),
    pytest.param(
        "cells:\n  - pass\nname: a: b\n",
        3,
        ["invalid YAML", "mapping values are not allowed here"],
        id="syntax-mapping-value",
    ),
    pytest.param(
        "cells:\n  - pass\n\t- oops\n",
        3,
        ["invalid YAML", "'\\t'"],
        id="syntax-tab",
    ),
    pytest.param(
        "cells: [pass\nname: x\n",
        2,
        ["invalid YAML", "expected ',' or ']'"],
        id="syntax-flow",
    ),
    pytest.param(
        "cells:\n  - pass\nname: a\ncells:\n  - pass\n",
        4,
        ["key 'cells' appears twice in the recipe"],
        id="duplicate-top-key",
    ),
    pytest.param(
        "cells:\n  - code: a = 1\n    name: x\n    code: b = 2\n",
        4,
        ["key 'code' appears twice in cell 1"],
        id="duplicate-cell-key",
    ),
    pytest.param(
        "timeout: -1\ncells:\n  - pass\n",
        1,
        ["timeout must be more than 0 and at most 604800 seconds, not -1"],
        id="negative-timeout",
    ),
    pytest.param(
        "cells:\n  - code: pass\n    timeout: 0\n",
        3,
        ["cell 1 timeout must be more than 0 and at most 604800 seconds, not 0"],
        id="zero-cell-timeout",
    ),
    pytest.param(
        "cells:\n  - pass\nenv:\n  GOOD: 1\n  A=B: 1\n",
        5,
        ["'A=B' is not a valid environment variable name"],
        id="env-name-with-equals",
    ),
    pytest.param(
        "env:\n  '': x\ncells:\n  - pass\n",
        2,
        ["'' is not a valid environment variable name"],
        id="env-empty-name",
    ),
    pytest.param(
        "env:\n  1: x\ncells:\n  - pass\n",
        2,
        ["an env variable name must be a string", "int '1'"],
        id="env-int-name",
    ),
    pytest.param(
        "env: [A]\ncells:\n  - pass\n",
        1,
        ["env must be a mapping of NAME: value, not a list"],
        id="env-list",
    ),
    pytest.param(
        "env:\n  A:\ncells:\n  - pass\n",
        2,
        ["env A must be a string or a number, not nothing (null)"],
        id="env-null-value",
    ),
    pytest.param(
        "env:\n  A: [1]\ncells:\n  - pass\n",
        2,
        ["env A must be a string or a number, not a list"],
        id="env-list-value",
    ),
]


@pytest.mark.parametrize(("text", "line", "fragments"), ERRORS)
def test_recipe_errors_name_file_line_and_fix(
    write_recipe: WriteRecipe, text: str, line: int, fragments: list[str]
) -> None:
    message, path = recipe_error(write_recipe, text)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message


def test_error_carries_path_and_line_attributes(write_recipe: WriteRecipe) -> None:
    path = write_recipe("r.yaml", "cells:\n  - pass\n  - code: pass\n    bogus: 1\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert (info.value.path, info.value.line, info.value.exit_code) == (str(path), 4, 2)
    assert info.value.hint == CELL_HINT


def test_unknown_key_without_close_match_lists_keys_only(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, "cells:\n  - pass\nzzzzzz: 1\n")
    assert message.startswith(f"{path}:3: unknown key 'zzzzzz' in the recipe")
    assert "did you mean" not in message
    assert f"hint: {RECIPE_HINT}" in message


def test_first_bad_cell_is_reported_not_a_later_one(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, "cells:\n  - pass\n  - code: ''\n  - 42\n")
    assert message.startswith(f"{path}:3: cell 2 has no code")


def test_nan_timeout_is_rejected(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, "timeout: .nan\ncells:\n  - pass\n")
    assert message.startswith(f"{path}:1: ")


def test_unknown_tag_is_a_recipe_error(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, "cells:\n  - pass\n  - !shell echo hi\n")
    assert message.startswith(f"{path}:3: ")


def test_bad_explicit_tag_value_is_a_recipe_error(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, "cells:\n  - code: pass\n    timeout: !!float abc\n")
    assert message.startswith(f"{path}:3: ")


def test_env_value_with_nul_is_rejected(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, 'env:\n  A: "a\\0b"\ncells:\n  - pass\n')
    assert message.startswith(f"{path}:2: ")


def test_unclosed_quote_points_at_its_line(write_recipe: WriteRecipe) -> None:
    message, path = recipe_error(write_recipe, 'cells:\n  - "print(1)\n  - x = 1\n  - y = 2\n\n\n')
    assert message.startswith(f"{path}:2: ") or "line 2" in message, message


# --- load_recipe: what every reader shares ---------------------------------------------------------------


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [b"", b" \n\t\n  \r\n"], ids=["empty", "whitespace"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    path = write_bytes(tmp_path, "r.yaml", data)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}:1: the file is empty\n  hint: a recipe needs at least one cell"


def test_comment_only_file_has_no_document(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "r.yaml", b"# nothing here\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}:1: the file holds no YAML document")
    assert "cells:" in str(info.value)


def test_binary_file(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "r.yaml", b"cells:\n  - pass\n\x00\x01\x02\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}:3: this looks like a binary file (it contains a NUL byte)")


def test_invalid_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "r.yaml", b"cells:\n  - pass\n  - print('caf\xe9')\n  - pass\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}:3: invalid UTF-8 (byte 0xe9)\n  hint: save the file as UTF-8"
    assert info.value.line == 3


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    data = "\ufeffname: caf\u00e9\ncells:\n  - print('\u2603')\n".encode()
    path = write_bytes(tmp_path, "r.yaml", data)
    recipe = load_recipe(path)
    assert recipe.name == "caf\u00e9"
    assert [(c.source, c.line) for c in recipe.cells] == [("print('\u2603')", 3)]
    assert recipe.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("name", "shown"), [("r.txt", "'.txt'"), ("recipe", "'(none)'")])
def test_unknown_suffix(tmp_path: Path, name: str, shown: str) -> None:
    path = write_bytes(tmp_path, name, b"cells:\n  - pass\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert info.value.line is None
    assert str(info.value) == (
        f"{path}: cannot tell the recipe format from the suffix {shown}\n"
        "  hint: use one of .yaml, .yml, .py, .md, .ipynb, .rst"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: no such file"
    assert info.value.exit_code == 2


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "looks-like.yaml"
    path.mkdir()
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path))
    assert str(info.value) == f"{path}: is a directory, not a recipe file"

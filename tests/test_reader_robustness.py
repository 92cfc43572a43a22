"""Inputs that once crashed or stalled a reader: each must now parse, or raise `RecipeError` with file:line
and a one-line message, within a second of CPU time (recursion once per nesting level or word, quadratic
scans, backtracking regular expressions). Lines are cut only at `\\n`, `\\r\\n` and `\\r`, as Python's
tokenizer cuts them: other separators stay inside their line."""

from __future__ import annotations

import pytest

from sandrun.errors import RecipeError
from sandrun.model import CellKind, Recipe
from sandrun.readers import Parser, markdown_doc, percent, yaml_recipe
from tests.fuzz.totality import read_within_bound

PRINT_ONE = "```python\nprint(1)\n```\n"

# Twice the sizes the bugs were reported with (7 s then, quadratic: about 30 s now; linear: milliseconds).
SLOW_INPUTS = [
    pytest.param(
        percent.parse, "# %% [markdown]\n" + "# ```x\n" * 8000 + "# %%\nprint(1)\n", id="prose-fences"
    ),
    pytest.param(percent.parse, "# %% " + "x= " * 40000 + "\nprint(1)\n", id="options-x="),
    pytest.param(percent.parse, "# %% " + "x=[ " * 40000 + "\nprint(1)\n", id="options-x=["),
    pytest.param(percent.parse, "# %% t " + "x=1 " * 40000 + "\nprint(1)\n", id="options-many"),
    pytest.param(percent.parse, "# %%\nx\n# expect stdout:\n" + "# xxxxxxxxxx\n" * 180000, id="expected"),
    pytest.param(markdown_doc.parse, "# x" + " " * 60000 + "x\n" + PRINT_ONE, id="heading-spaces"),
    pytest.param(markdown_doc.parse, "# a" + " " * 60000 + "##x\n" + PRINT_ONE, id="heading-hashes"),
    pytest.param(
        markdown_doc.parse, "```python timeout=" + "1" * 60000 + "x\nprint(1)\n```\n", id="timeout-digits"
    ),
]


@pytest.mark.parametrize(("parser", "text"), SLOW_INPUTS)
def test_no_quadratic_time(parser: Parser, text: str) -> None:
    read_within_bound(text.encode(), parser)


def read(parser: Parser, text: str) -> Recipe:
    outcome = read_within_bound(text.encode(), parser, "recipe")
    assert isinstance(outcome, Recipe), str(outcome)
    return outcome


def error(parser: Parser, text: str) -> RecipeError:
    outcome = read_within_bound(text.encode(), parser, "recipe")
    assert isinstance(outcome, RecipeError), outcome
    return outcome


# --- recursion -------------------------------------------------------------------------------------------


def test_deeply_nested_yaml_is_an_error_at_its_line() -> None:
    err = error(yaml_recipe.parse, "name: deep\ncells: " + "[" * 500 + "]" * 500 + "\n")
    assert str(err) == "recipe:2: invalid YAML: the document is nested more than 100 levels deep"


def test_a_percent_header_with_a_thousand_words_is_read() -> None:
    recipe = read(percent.parse, "# %% t x=1 " + "a " * 1000 + "\nprint(1)\n")
    assert recipe.cells[0].name == "t" and recipe.cells[0].source == "print(1)"


def test_options_too_long_are_quoted_short() -> None:
    err = error(percent.parse, "# %% " + "x= " * 20000 + "\nprint(1)\n")
    assert err.line == 1 and len(err.message) < 200 and err.message.endswith("...'")


# --- lines -----------------------------------------------------------------------------------------------

SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("separator", SEPARATORS, ids=ascii)
def test_percent_keeps_a_string_literal_whole(separator: str) -> None:
    code = f'print("a{separator}b")'
    recipe = read(percent.parse, f"# %%\n{code}\n\n# %%\nx = 1\n")
    assert recipe.cells[0].source == code
    compile(recipe.cells[0].source, "recipe", "exec")  # was a SyntaxError: the literal was cut in two
    assert recipe.cells[1].line == 5


def test_a_form_feed_does_not_shift_line_numbers() -> None:
    recipe = read(percent.parse, "# %%\nx = 1\x0c\ny = 2\n\n# %%\nz = 3\n")
    assert [cell.line for cell in recipe.cells] == [2, 6]


def test_nel_in_expected_output_stays_expected_text() -> None:
    recipe = read(percent.parse, "# %%\nprint('a\\x85b')\n# expect stdout:\n# a\x85b\n")
    assert recipe.cells[0].source == "print('a\\x85b')\n# expect stdout:\n# a\x85b"
    stdout = recipe.cells[0].expect.stdout
    assert stdout is not None and stdout.text == "a\x85b" and stdout.line == 4


def test_percent_prose_keeps_separators_inside_lines() -> None:
    recipe = read(percent.parse, '# %% [markdown]\n"""\nA\u2028B\n"""\n\n# %%\nx = 1\n')
    assert recipe.cells[0].kind is CellKind.MARKDOWN and recipe.cells[0].source == "A\u2028B"


@pytest.mark.parametrize("separator", ["\u2028", "\x85"], ids=ascii)
def test_yaml_lines_are_the_editors(separator: str) -> None:
    text = f"cells:\n  - code: \"print('a{separator}b')\"\n  - code: print(2)\n    expect: {{stdout: x}}\n"
    recipe = read(yaml_recipe.parse, text)
    assert [cell.line for cell in recipe.cells] == [2, 3]
    stdout = recipe.cells[1].expect.stdout
    assert stdout is not None and stdout.line == 4
    assert error(yaml_recipe.parse, text + f"  - {separator}: [\n").line == 5


def test_markdown_keeps_separators_inside_lines() -> None:
    recipe = read(markdown_doc.parse, "# T\u2028itle\n\n```python\nprint('a\u2028b')\n```\n")
    assert recipe.name == "T\u2028itle" and recipe.cells[0].line == 4
    assert recipe.cells[0].source == "print('a\u2028b')\n"


# --- one-line YAML errors --------------------------------------------------------------------------------


def test_a_control_character_in_yaml_is_an_error_at_its_line() -> None:
    err = error(yaml_recipe.parse, 'name: x\ncells:\n  - print("a\x01")\n')
    assert err.line == 3
    assert err.message == "invalid YAML: unacceptable character #x0001: special characters are not allowed"
    assert "position" not in str(err) and "<unicode string>" not in str(err)

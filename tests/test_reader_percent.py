"""Tests for the percent-format reader, with jupytext as the oracle for what the cells are.

Every file in `tests/corpus/percent/` must give the cells (kind, source, title, tags) that
`jupytext.reads(text, fmt="py:percent")` gives. jupytext is a test-only dependency: the reader never
imports it.

Out of scope, on purpose:
- jupytext's magic escaping. It uncomments lines that look like escaped IPython magics, shell or help
  commands (`# %time x`, `# !ls`, `# cd data`, `# why?`) and double-escaped markers (`# # +`). Recipes are
  plain Python, so sandrun keeps them as comments (see `test_magic_like_comments_stay_comments`); the
  corpus has no such lines.
- jupytext's `active`/`language` cell options, which would make jupytext comment or uncomment code:
  sandrun refuses them instead of guessing.
- The YAML header's content: sandrun skips it without validating it, and always reads Python percent
  cells, whatever `format_name` or kernel language the header names (jupytext would follow them, or
  fail on a malformed `jupyter:` section).
- Line separators other than `\\n`, `\\r\\n` and `\\r` (form feeds, U+2028...): jupytext cuts lines with
  `str.splitlines`; sandrun cuts them where Python's tokenizer does, so such characters stay inside their
  line (see `tests/test_reader_robustness.py`); the corpus has none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandrun.errors import RecipeError
from sandrun.model import ANY_EXCEPTION, CellKind, Expectation, Recipe
from sandrun.readers import load_recipe
from sandrun.readers.percent import parse

CORPUS = sorted((Path(__file__).parent / "corpus" / "percent").glob("*.py"))


def read(text: str, path: str = "recipe.py") -> Recipe:
    """Parse `text` with a dummy digest."""
    return parse(text, path, "0" * 64)


def ours(text: str) -> list[tuple[str, str, str | None, list[str]]]:
    """(kind, source, title, tags) of each cell, as sandrun reads them."""
    return [(c.kind.value, c.source, c.name, list(c.tags)) for c in read(text).cells]


def theirs(text: str) -> list[tuple[str, str, str | None, list[str]]]:
    """(kind, source, title, tags) of each cell, as jupytext reads them."""
    jupytext = pytest.importorskip("jupytext")
    cells = jupytext.reads(text, fmt="py:percent").cells
    return [(c.cell_type, c.source, c.metadata.get("title"), list(c.metadata.get("tags", []))) for c in cells]


def corpus_text(path: Path) -> str:
    """A corpus file's text, line endings untouched."""
    return path.read_bytes().decode("utf-8")


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 12


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_matches_jupytext(path: Path) -> None:
    text = corpus_text(path)
    assert ours(text) == theirs(text)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_cells_point_at_their_lines(path: Path) -> None:
    text = corpus_text(path)
    lines = text.splitlines()
    recipe = parse(text, str(path), "abc")
    assert [c.index for c in recipe.cells] == list(range(len(recipe.cells)))
    assert {c.path for c in recipe.cells} == {str(path)}
    for cell in recipe.cells:
        assert 1 <= cell.line <= len(lines) + 1
        if cell.kind is CellKind.CODE and cell.source:
            source = cell.source.split("\n")
            assert lines[cell.line - 1 : cell.line - 1 + len(source)] == source, cell


# Cases where jupytext does something surprising; sandrun matches it (each case is checked against it).
SURPRISES = {
    # A blank line before the first marker is a cell of its own: an empty code cell.
    "leading blank line": ("\n# %%\nx = 1\n", [("code", ""), ("code", "x = 1")]),
    # Exactly two blank lines before a marker are cut; with three, two stay in the cell.
    "three blank lines": ("# %%\nx = 1\n\n\n\n# %%\ny\n", [("code", "x = 1\n\n"), ("code", "y")]),
    # Only an empty line is cut: a whitespace-only line before a marker is content.
    "whitespace line": ("# %%\nx = 1\n  \n# %%\ny\n", [("code", "x = 1\n  "), ("code", "y")]),
    # `# %%%` alone is no marker (`# %%% title` is one, a Spyder sub-cell).
    "bare triple percent": ("# %%\nx = 1\n# %%%\ny\n", [("code", "x = 1\n# %%%\ny")]),
    # An indented marker still cuts: here through a function body.
    "indented marker": (
        "def f():\n    # %%\n    return 1\n",
        [("code", "def f():"), ("code", "    return 1")],
    ),
    # `key = value` after `# %%` is an option, not a title.
    "option not title": ("# %% x = 1\ny\n", [("code", "y")]),
    # The cell types are looked for in the order markdown, raw, md; the others stay in the title.
    "two cell types": ("# %% [raw] [markdown]\n# m\n# %%\nx\n", [("markdown", "m"), ("code", "x")]),
    # A markdown cell written as a docstring is unwrapped.
    "docstring markdown": ('# %% [markdown]\n"""\nHi\n"""\n# %%\nx\n', [("markdown", "Hi"), ("code", "x")]),
    # In prose, a code fence hides markers if a closing fence comes anywhere later, even in another cell.
    "far fence": (
        "# %% [markdown]\n# ```\n# %%\nx = 1\n# %%\n# ```\n# %%\ny\n",
        [("markdown", "```\n%%\nx = 1\n%%\n```"), ("code", "y")],
    ),
    # A no-break space after a fence (anything `str.strip` removes) is no info string: the fence closes,
    # where CommonMark would keep it open.
    "no-break space after a closing fence": (
        "# %% [markdown]\n# ```\n# %%\n# ```\xa0\n# %%\ny = 1\n",
        [("markdown", "```\n%%\n```\xa0"), ("code", "y = 1")],
    ),
    # A YAML header is skipped with the one blank line after it; its non-`jupyter` keys make a raw cell.
    "header": ("# ---\n# title: T\n# ---\n\n\nx\n", [("raw", "---\ntitle: T\n---"), ("code", "\nx")]),
}


@pytest.mark.parametrize("case", SURPRISES)
def test_surprising_jupytext_rules(case: str) -> None:
    text, expected = SURPRISES[case]
    assert [(kind, source) for kind, source, _, _ in ours(text)] == expected
    assert ours(text) == theirs(text)


def test_line_numbers() -> None:
    text = (
        "#!/usr/bin/env python\n"  # 1
        "# ---\n"  # 2
        "# jupyter:\n"  # 3
        "#   jupytext:\n"  # 4
        "#     formats: py:percent\n"  # 5
        "# ---\n"  # 6
        "\n"  # 7
        "import os\n"  # 8: the text before the first marker is a cell
        "\n"  # 9
        "# %% First\n"  # 10
        "x = 1\n"  # 11
        "\n"  # 12
        "\n"  # 13
        "# %% [markdown]\n"  # 14
        "# Prose\n"  # 15
        "# %%\n"  # 16
        "\n"  # 17
        "y = 2\n"  # 18: the blank line 17 is part of the source
    )
    cells = read(text).cells
    assert [(c.kind, c.line, c.source) for c in cells] == [
        (CellKind.CODE, 8, "import os"),
        (CellKind.CODE, 11, "x = 1"),
        (CellKind.MARKDOWN, 15, "Prose"),
        (CellKind.CODE, 17, "\ny = 2"),
    ]
    assert [c.location for c in cells] == ["recipe.py:8", "recipe.py:11", "recipe.py:15", "recipe.py:17"]


def test_crlf_line_endings_read_like_lf() -> None:
    text = "# %% One\r\nx = 1\r\n\r\n# %% Two\r\ny = 2\r\n"
    assert ours(text) == ours(text.replace("\r\n", "\n")) == theirs(text)
    assert [c.line for c in read(text).cells] == [2, 5]


def test_recipe_fields() -> None:
    recipe = parse("# %% Go\nx = 1\n", "dir/r.py", "f00d")
    assert (recipe.path, recipe.sha256, recipe.format, recipe.name) == ("dir/r.py", "f00d", "percent", None)
    assert recipe.cells[0].name == "Go"
    assert recipe.cells[0].label == "Go"


def test_raises_exception_tag_sets_the_expectation() -> None:
    text = '# %% Boom tags=["raises-exception", "slow"]\n1 / 0\n# %% tags=["slow"]\nx = 1\n# %%\ny = 2\n'
    boom, slow, plain = read(text).cells
    assert boom.expect == Expectation(error=ANY_EXCEPTION)
    assert boom.tags == ("raises-exception", "slow")
    assert slow.expect == plain.expect == Expectation()
    assert slow.tags == ("slow",) and plain.tags == ()


def test_json_options_give_tags_too() -> None:
    (cell,) = read('# %% {"tags": ["raises-exception"]}\nraise KeyError\n').cells
    assert cell.expect.error == ANY_EXCEPTION


def test_markdown_and_raw_cells_are_not_code() -> None:
    recipe = read("# %% [markdown]\n# Hi\n# %% [raw]\nraw\n# %% [md]\n# Hey\n# %%\nx = 1\n")
    assert [c.kind.value for c in recipe.cells] == ["markdown", "raw", "markdown", "code"]
    assert [c.index for c in recipe.code_cells] == [3]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "# %% [markdown]\n# Only prose\n",
        "# %%\n\n# %%\n   \n",
        "# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n# ---\n",
    ],
    ids=["empty", "blank", "markdown only", "empty code cells", "header only"],
)
def test_no_code_cells(text: str) -> None:
    with pytest.raises(RecipeError) as caught:
        read(text)
    assert (caught.value.path, caught.value.line) == ("recipe.py", 1)
    assert caught.value.message.startswith("no code cells")
    assert caught.value.hint


@pytest.mark.parametrize(
    "options", ["tags=[unclosed", "x=1 y=", "My {bad json", "title = with spaces", "a b=c d", "{1, 2}"]
)
def test_unreadable_options(options: str) -> None:
    text = f"# %%\nx = 1\n# %% {options}\ny = 2\n"
    with pytest.raises(RecipeError) as caught:
        read(text)
    assert caught.value.line == 3
    assert options in caught.value.message
    assert 'tags=["raises-exception"]' in (caught.value.hint or "")
    if options != "{1, 2}":  # jupytext cannot read them either: it keeps them as unparsed text
        cells = pytest.importorskip("jupytext").reads(text, fmt="py:percent").cells
        assert "incorrectly_encoded_metadata" in cells[1].metadata


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('tags="slow"', "`tags` must be a list of strings"),  # jupytext writes a notebook nbformat refuses
        ("tags=[1]", "`tags` must be a list of strings"),
        ('cell_type="md"', "`cell_type` must be"),  # jupytext makes this a raw cell
        ("title=3", "`title` a string"),
        ('active="ipynb"', "`active` and `language`"),
        ('tags=["active-ipynb"]', "`active` and `language`"),
        ('language="R"', "`active` and `language`"),
    ],
)
def test_options_sandrun_refuses(options: str, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        read(f"x = 0\n# %% Title {options}\ny = 2\n")
    assert caught.value.line == 2
    assert message in caught.value.message


def test_magic_like_comments_stay_comments() -> None:
    # Out of scope (see the module docstring): jupytext uncomments these, sandrun keeps plain Python.
    text = "# %%\n# cd into the data folder\n# %time\nx = 1\n"
    assert ours(text)[0][1] == "# cd into the data folder\n# %time\nx = 1"
    assert theirs(text)[0][1] == "cd into the data folder\n%time\nx = 1"


def test_reader_does_not_import_jupytext() -> None:
    code = "import sys, sandrun.readers.percent; print('jupytext' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_skip_tag_marks_the_cell_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.py"
    path.write_text('# %% slow tags=["skip"]\nimport time\n\n# %% fast\nx = 1\n')
    cells = load_recipe(path).cells
    assert [(c.name, c.skip) for c in cells] == [("slow", True), ("fast", False)]


def test_expect_comment_with_a_bad_exception_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.py"
    path.write_text('# %%\nint("x")\n# expect error: Value Error\n')
    with pytest.raises(RecipeError, match=r"r\.py:3: 'Value Error' is not an exception name"):
        load_recipe(path)

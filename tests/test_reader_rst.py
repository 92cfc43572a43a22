"""The reStructuredText reader: which directives, literal blocks and doctest blocks become cells, at their
real lines and at any nesting; `sphinx.ext.doctest`'s testsetup/testcode/testoutput/doctest/testcleanup with
`:options:` and `:skipif:`; sandrun's `.. sandrun:` comments; docutils as the oracle for which Python
literal blocks exist; then end to end with the real local sandbox, a failing output and `--update`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sandrun.discover import looks_like_recipe
from sandrun.errors import RecipeError
from sandrun.model import Condition, Recipe
from sandrun.readers import load_recipe
from sandrun.readers.rst import parse

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def read(text: str) -> Recipe:
    """Parse dedented `text` with a dummy digest."""
    return parse(textwrap.dedent(text), "doc.rst", "0" * 64)


def cells(text: str) -> list[tuple[int, str]]:
    """(line, source) of every cell."""
    return [(c.line, c.source) for c in read(text).cells]


NESTED = """\
    Title
    =====

    .. code-block:: python
       :caption: first
       :linenos:

       x = 1

    .. class:: Thing

       A class.

       .. method:: run()

          .. note::

             .. code:: py

                y = x + 1

    Term
       Definition::

           >>> y
           2

    .. admonition:: Look

       >>> y * 2
       4
"""


def test_code_directives_nested_at_any_depth_with_their_real_lines() -> None:
    found = cells(NESTED)
    assert found == [(8, "x = 1\n"), (20, "y = x + 1\n"), (25, "y\n"), (30, "y * 2\n")]


def test_sessions_expect_their_console_output_at_its_line() -> None:
    recipe = read(NESTED)
    repl = recipe.cells[2].expect.repl
    assert repl is not None and repl.text == "2\n" and repl.line == 26


def test_other_languages_and_plain_literal_blocks_are_not_cells() -> None:
    text = """\
        .. code-block:: bash

           python -c 'print(1)'

        Plain literal::

            print("not a session")

        .. sourcecode:: python3

           z = 3
    """
    assert cells(text) == [(11, "z = 3\n")]


def test_sphinx_doctest_directives() -> None:
    text = """\
        .. testsetup::

           import math

        .. testcode::

           print(math.floor(2.5))

        .. testoutput::
           :options: +NORMALIZE_WHITESPACE

           2

        .. doctest::

           >>> math.ceil(2.5)
           3

        .. testcleanup::

           del math
    """
    recipe = read(text)
    assert [(c.line, c.source) for c in recipe.cells] == [
        (3, "import math\n"), (7, "print(math.floor(2.5))\n"), (16, "math.ceil(2.5)\n"), (21, "del math\n"),
    ]  # fmt: skip
    stdout = recipe.cells[1].expect.stdout
    assert stdout is not None and stdout.text == "2\n" and stdout.line == 12
    assert stdout.doctest == frozenset({"NORMALIZE_WHITESPACE"})


def test_skip_options_skip_the_block_which_is_still_listed_and_skipif_is_kept_for_the_sandbox() -> None:
    text = """\
        .. testcode::
           :skipif: True

           a = 1

        .. doctest::
           :options: +SKIP

           >>> b

        .. sandrun: skip
        .. code-block:: python

           c = 1

        .. code-block:: python

           d = 1
    """
    found = [(c.line, c.skip, c.skip_if) for c in read(text).cells]
    assert found == [(4, False, Condition("True", 2)), (9, True, None), (14, True, None), (18, False, None)]


def test_sandrun_comment_options() -> None:
    text = """\
        .. sandrun: name=boom timeout=5 raises=ValueError
        .. code-block:: python

           int("x")
    """
    cell = read(text).cells[0]
    assert (cell.name, cell.timeout, cell.expect.error) == ("boom", 5.0, "ValueError")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (".. sandrun: nope\n.. code-block:: python\n\n   x = 1\n", 1, "option 'nope' is unknown"),
        (".. sandrun: skip\n\nJust prose.\n\n.. code-block:: python\n\n   x\n", 1, "not followed"),
        (".. testoutput::\n\n   1\n", 1, "must follow a `.. testoutput::`".replace("testoutput", "testcode")),
        ("Nothing here.\n", 1, "no Python examples"),
    ],
)
def test_mistakes_are_recipe_errors_at_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse(text, "doc.rst", "0" * 64)
    assert info.value.line == line and message in str(info.value)


def test_crlf_lines_and_spans() -> None:
    text = ".. testcode::\r\n\r\n   print(1)\r\n\r\n.. testoutput::\r\n\r\n   1\r\n"
    recipe = parse(text, "doc.rst", "0" * 64)
    assert recipe.cells[0].line == 3 and recipe.cells[0].source == "print(1)\n"
    stdout = recipe.cells[0].expect.stdout
    assert stdout is not None and stdout.line == 7 and stdout.span is not None
    assert text[slice(*stdout.span)] == "   1\r\n"


def test_rst_is_registered_and_discovered(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(textwrap.dedent(NESTED))
    assert load_recipe(doc).format == "rst"
    assert looks_like_recipe(doc)
    prose = tmp_path / "prose.rst"
    prose.write_text("Only prose.\n\n.. code-block:: bash\n\n   ls\n")
    assert not looks_like_recipe(prose)


ORACLE_CORPUS = """\
Doc
===

.. code:: python

   a = 1

.. note::

   .. tip::

      .. code-block:: py

         b = a + 1

   Definition list
      Term::

          >>> b
          2

- A list item

  >>> b * 2
  4

  .. sourcecode:: pycon

     >>> b * 3
     6

.. code:: bash

   echo no

Literal::

    not python
"""


def test_every_python_block_docutils_finds_is_a_cell_at_the_same_line() -> None:
    docutils_core = pytest.importorskip("docutils.core")
    from docutils import nodes

    tree = docutils_core.publish_doctree(ORACLE_CORPUS, settings_overrides={"report_level": 5})
    blocks = [
        node
        for node in tree.findall(lambda n: isinstance(n, (nodes.literal_block, nodes.doctest_block)))
        if isinstance(node, nodes.doctest_block)
        or {"python", "py", "pycon"} & set(node.get("classes", []))
        or node.astext().startswith(">>> ")
    ]
    assert len(blocks) == 5, "the oracle's reading changed"
    ours = parse(ORACLE_CORPUS, "doc.rst", "0" * 64).cells
    for node in blocks:
        first = node.astext().split("\n")[0].removeprefix(">>> ")
        lines = [c.line for c in ours if c.source.split("\n")[0] == first]
        assert lines, node.astext()
        if node.line is None:  # docutils loses the line of a `code` directive nested in another
            continue
        # docutils gives the first line of literal and doctest blocks, the line after a `code` directive's
        first_line = node.line - len(node.astext().split("\n")) if "code" in node["classes"] else node.line
        assert first_line in lines, (first_line, lines)
    assert len(ours) == 5


# --- end to end, with the real local sandbox ----------------------------------------------------------

SPHINX = """\
Doc
===

.. testsetup::

   import math

.. class:: Circle

   .. testcode::

      print(round(math.pi, 2))
      print("area")

   .. testoutput::

      3.14
      area

.. doctest::

   >>> math.sqrt(16)
   4.0
"""


def run(path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """`sandrun run path` with the local backend and a JSON transcript: exit code, transcript, stderr."""
    command = [sys.executable, "-m", "sandrun", "run", str(path), "--backend", "local", "--format", "json"]
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_end_to_end_passes_fails_at_the_line_and_update_changes_only_that_output(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(SPHINX)
    code, transcript, err = run(doc)
    assert code == 0, err
    assert [c["status"] for c in transcript["cells"]] == ["passed"] * 3

    broken = SPHINX.replace("      area\n", "      perimeter\n")
    doc.write_text(broken)
    code, transcript, err = run(doc)
    assert code == 1
    failed = [c for c in transcript["cells"] if c["status"] == "failed"]
    assert len(failed) == 1 and "perimeter" in json.dumps(failed[0])
    assert "expected at line 17" in err, err  # the first line of the testoutput body

    code, _, err = run(doc, "--update")
    assert doc.read_text() == SPHINX, err
    assert run(doc)[0] == 0


def test_recipe_example_runs() -> None:
    code, transcript, err = run(RECIPES / "sphinx_doctest.rst")
    assert code == 0, err
    statuses = [c["status"] for c in transcript["cells"]]
    assert statuses.count("skipped") == 1 and "failed" not in statuses


def test_prompts_in_non_python_blocks_and_comments_are_not_examples() -> None:
    text = """\
        .. code-block:: text

           >>> not_run()

        .. raw:: html

           >>> not_run()

        .. A comment

           >>> not_run()

        .. _target:

        >>> ran = True
    """
    found = [(c.line, c.source, c.unsupported is not None) for c in read(text).cells]
    assert found == [(3, ">>> not_run()\n", True), (15, "ran = True\n", False)]  # the first is listed


def test_settings_comment_gives_the_yaml_recipe_settings() -> None:
    text = """\
        .. sandrun-settings:

           name: demo
           timeout: 30
           env: {A: "1"}
           packages: [tabulate]

        >>> 1
        1
    """
    recipe = read(text)
    assert (recipe.name, recipe.timeout, dict(recipe.env), recipe.packages) == (
        "demo",
        30.0,
        {"A": "1"},
        ("tabulate",),
    )
    assert recipe.cells[0].line == 8


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (".. sandrun-settings:\n\n   timout: 3\n\n>>> 1\n", 3, "unknown key 'timout' in the settings"),
        (".. sandrun-settings:\n\n   timeout: -1\n\n>>> 1\n", 3, "timeout"),
        (".. sandrun-settings:\n\n   cells: []\n\n>>> 1\n", 3, "unknown key 'cells'"),
        (".. sandrun-settings:\n   a: [\n\n>>> 1\n", 3, "invalid YAML"),
        (".. sandrun-settings:\n\n   name: a\n.. sandrun-settings:\n\n   name: b\n\n>>> 1\n", 4, "a second"),
        (".. sandrun-settings:\n\n>>> 1\n", 1, "is empty"),
    ],
)
def test_bad_settings_are_recipe_errors_at_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse(text, "doc.rst", "0" * 64)
    assert info.value.line == line and message in str(info.value), str(info.value)


def test_readme_rst_example_runs(tmp_path: Path) -> None:
    readme = (RECIPES.parent / "README.md").read_text()
    example = readme.split("```rst\n", 1)[1].split("```\n", 1)[0]
    doc = tmp_path / "example.rst"
    doc.write_text(example)
    code, transcript, err = run(doc)
    assert code == 0, err
    assert [c["status"] for c in transcript["cells"]] == ["passed", "passed"]
    assert transcript["recipe"]["timeout"] == 30


def test_doctest_options_and_per_example_directives_are_honoured() -> None:
    text = """\
        .. doctest::
           :options: +NUMBER

           >>> 22 / 7
           3.14
           >>> import random; random.random()  # doctest: +SKIP
           0.5
    """
    first, second = read(text).cells
    assert first.expect.repl is not None and "NUMBER" in first.expect.repl.doctest
    assert (first.skip, second.skip) == (False, True)

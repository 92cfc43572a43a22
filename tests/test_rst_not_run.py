"""No silent skips in reStructuredText, and skip reasons that say the truth in every document format.

Blocks that look like Python but are not run (another `py...` language, a `>>>` session in a block of
another language, an IPython console session, IPython's and jupyter-sphinx's directives) are cells that
are skipped with the reason, listed by `sandrun cells`, counted in the summary and fatal under `--strict`,
exactly as in Markdown. A skip that the document asks for names what asked for it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandrun.model import Recipe
from sandrun.readers.markdown_doc import parse as parse_markdown
from sandrun.readers.percent import parse as parse_percent
from sandrun.readers.rst import parse

NOT_RUN = """\
.. code-block:: pycon3

   >>> 1

.. code-block:: python-repl

   x = 1

.. code-block:: text

   >>> print("a session marked as text")

.. code-block:: ipython

   In [1]: x = 1

.. ipython:: python

   x = 2

.. jupyter-execute::

   x = 3

.. plot::

   import matplotlib.pyplot as plt

.. plot:: script.py
   :include-source:

.. code-block:: bash

   python -c 'print(1)'

.. code-block::

   >>> ran = True

.. code-block:: ipython3

   also = True
"""


def read(text: str, path: str = "doc.rst") -> Recipe:
    return parse(textwrap.dedent(text), path, "0" * 64)


def test_blocks_that_look_like_python_but_are_not_run_are_listed_with_the_reason() -> None:
    listed = [(c.line, c.skip, c.unsupported) for c in read(NOT_RUN).cells]
    assert listed == [
        (3, True, "the language 'pycon3' is not one sandrun runs "
                  "(it runs python, py, python3, py3, ipython, ipython3, pycon)"),
        (7, True, "the language 'python-repl' is not one sandrun runs "
                  "(it runs python, py, python3, py3, ipython, ipython3, pycon)"),
        (11, True, "a >>> session in a 'text' block (write it as `.. code-block:: pycon` to run it)"),
        (15, True, "an IPython console session (`In [1]:` prompts) is not run by sandrun; "
                   "write it as >>> lines"),
        (19, True, "the directive `.. ipython::` is not one sandrun runs"),
        (23, True, "the directive `.. jupyter-execute::` is not one sandrun runs"),
        (27, True, "the directive `.. plot::` is not one sandrun runs"),
        (38, False, None),
        (42, False, None),
    ]  # fmt: skip


def test_a_sandrun_comment_before_a_block_not_run_is_used_up_by_it() -> None:
    recipe = read(".. sandrun: skip\n.. code-block:: pycon3\n\n   >>> 1\n\n>>> 2\n2\n")
    assert [c.unsupported is not None for c in recipe.cells] == [True, False]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sandrun", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_summary_counts_them_the_transcript_lists_them_and_strict_fails(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(NOT_RUN)
    done = run_cli("run", doc, "--backend", "local", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "(2 passed, 7 skipped)" in done.stderr
    assert "doc.rst:19): skipped (the directive `.. ipython::` is not one sandrun runs)" in done.stderr
    transcript = json.loads(done.stdout)
    assert transcript["summary"]["found_not_run"] == 7
    listed = [(c["line"], c["unsupported"], c["reason"]) for c in transcript["cells"] if c["unsupported"]]
    assert listed[2] == (11, listed[2][1], listed[2][1]) and "'text' block" in listed[2][1]
    strict = run_cli("run", doc, "--backend", "local", "--strict")
    assert strict.returncode == 1, strict.stderr
    assert f"--strict: {doc}:23: found but not run: the directive `.. jupyter-execute::`" in strict.stderr


def test_sandrun_cells_lists_them(tmp_path: Path) -> None:
    doc = tmp_path / "doc.rst"
    doc.write_text(NOT_RUN)
    done = run_cli("cells", doc)
    assert done.returncode == 0, done.stderr
    assert "(not run: the language 'python-repl' is not one sandrun runs" in done.stdout
    assert done.stdout.count("(not run:") == 7
    skips = run_cli("cells", Path(__file__).parent.parent / "recipes" / "sphinx_doctest.rst")
    assert "(skip: `.. sandrun: skip` in the document)" in skips.stdout, skips.stdout


def test_sandrun_cells_shows_a_skipif_condition_without_evaluating_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    doc = tmp_path / "doc.rst"
    doc.write_text(f".. testcode::\n   :skipif: open(r'{marker}', 'w')\n\n   x = 1\n")
    done = run_cli("cells", doc)
    assert done.returncode == 0, done.stderr
    assert f"(skipped if `open(r'{marker}', 'w')` is true)" in done.stdout
    assert not marker.exists()


# --- skip reasons that say the truth ---------------------------------------------------------------------


def test_rst_skip_reasons_name_what_skipped_the_block() -> None:
    recipe = read("""\
        .. testcode::
           :options: +SKIP

           a = 1

        .. doctest::

           >>> b = 2  # doctest: +SKIP

        .. sandrun: skip
        .. code-block:: python

           c = 3

        .. testcode::

           d = 4

        .. testoutput::
           :options: +SKIP

           4
    """)
    assert [(c.skip, c.why_skipped) for c in recipe.cells] == [
        (True, "`:options: +SKIP` of its `.. testcode::`"),
        (True, "doctest's `+SKIP` directive"),
        (True, "`.. sandrun: skip` in the document"),
        (True, "`:options: +SKIP` of its `.. testoutput::`"),
    ]


def test_markdown_and_percent_skip_reasons_name_what_skipped_the_block() -> None:
    text = (
        "```python skip\na = 1\n```\n\n<!-- sandrun: skip -->\n```python\nb = 1\n```\n\n"
        "```{code-cell} python\n:tags: [skip-execution]\nc = 1\n```\n\n"
        "```pycon\n>>> d  # doctest: +SKIP\n```\n"
    )
    reasons = [c.why_skipped for c in parse_markdown(text, "doc.md", "0" * 64).cells]
    assert reasons == [
        "`skip` in its info string",
        "`<!-- sandrun: skip -->` in the document",
        "the `skip-execution` tag of its {code-cell}",
        "doctest's `+SKIP` directive",
    ]
    percent = parse_percent('# %% slow tags=["skip"]\nx = 1\n', "r.py", "0" * 64)
    assert percent.cells[0].why_skipped == "the `skip` tag of its `# %%` line"


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("doc.rst", ".. testcode::\n   :options: +SKIP\n\n   1/0\n\n>>> 1\n1\n", "`:options: +SKIP` of its"),
        (
            "doc.md",
            "<!-- sandrun: skip -->\n```python\n1/0\n```\n\n```python\n1\n```\n",
            "`<!-- sandrun: skip -->`",
        ),
    ],
)
def test_the_transcript_gives_the_true_reason(tmp_path: Path, name: str, text: str, reason: str) -> None:
    doc = tmp_path / name
    doc.write_text(text)
    done = run_cli("run", doc, "--backend", "local", "--format", "json")
    assert done.returncode == 0, done.stderr
    skipped = json.loads(done.stdout)["cells"][0]
    assert skipped["status"] == "skipped" and skipped["reason"].startswith(reason), skipped["reason"]
    assert "recipe" not in skipped["reason"]


def test_an_ipython_console_session_is_listed_in_markdown_too() -> None:
    text = "```ipython\nIn [1]: x = 1\n```\n\n```ipython\ny = 2\n```\n"
    cells = parse_markdown(text, "doc.md", "0" * 64).cells
    assert [(c.line, c.unsupported is not None) for c in cells] == [(2, True), (6, False)]
    assert cells[0].unsupported is not None and "In [1]:" in cells[0].unsupported

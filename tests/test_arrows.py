"""`#>` comments, pytest-examples' way of writing what a statement printed: checked and rewritten.

Recipes run for real (the process backend, and the local sandbox for the driver's record), in every format
that holds code; `--update` is checked byte for byte and must then leave the file alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.events import ProtocolViolation, done_fields
from sandrun.model import CellStatus, StatementOutput, Transcript
from sandrun.readers import load_recipe
from sandrun.runner import RunOptions, run_recipe
from sandrun.session import CellRequest, Session
from sandrun.update import update_recipe
from tests.conftest import ROOT


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(textwrap.dedent(text).encode())
    return path


def run(path: Path) -> Transcript:
    return run_recipe(load_recipe(path), get_backend("process"), RunOptions(keep_going=True))


def statuses(transcript: Transcript) -> list[str]:
    return [result.status.value for result in transcript.results]


# --- checking -----------------------------------------------------------------------------------------


def test_matching_arrows_pass(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "doc.md",
        """\
        ```python
        print('hello')
        #> hello
        x = {'a': 1}
        print(x)
        #> {'a': 1}
        x["b"] = 2
        ```
        """,
    )
    transcript = run(path)
    assert statuses(transcript) == ["passed"]
    printed = transcript.results[0].printed
    assert printed is not None
    assert [(s.line, s.end_line, s.stdout) for s in printed] == [
        (2, 2, "hello\n"),
        (4, 4, ""),
        (5, 5, "{'a': 1}\n"),
        (7, 7, ""),
    ]


def test_a_mismatch_names_the_line_of_its_arrows_and_shows_a_diff(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "doc.md",
        """\
        Some prose.

        ```python
        print("one")
        #> one
        print({"a": 1})
        #> {'a': 2}
        ```
        """,
    )
    result = run(path).results[0]
    assert result.status is CellStatus.FAILED
    assert result.reason == f"the #> lines at {path}:7 do not match what line 6 printed"
    assert result.diff is not None
    assert f"--- expected #> output ({path}:7)" in result.diff
    assert "-{'a': 2}\n+{'a': 1}" in result.diff


def test_a_github_annotation_points_at_the_arrows(tmp_path: Path) -> None:
    from sandrun.reports.annotations import annotation_line

    path = write(tmp_path, "cells.py", "# %%\nx = 1\nprint(x)\n#> 2\nprint(3)\n")
    assert annotation_line(run(path).results[0]) == 4
    path = write(tmp_path, "cells.py", "# %%\nx = 1\nprint(x)\n#> 1\nprint(3)\n")
    assert annotation_line(run(path).results[0]) == 5


def test_several_mismatches_are_counted_and_each_has_its_diff(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\nprint(1)\n#> 2\nprint(3)\n#> 4\n")
    result = run(path).results[0]
    assert result.reason == f"the #> lines at {path}:3 do not match what line 2 printed (and 1 more)"
    assert result.diff is not None and f"({path}:3)" in result.diff and f"({path}:5)" in result.diff


def test_a_multi_line_print_is_several_arrow_lines(tmp_path: Path) -> None:
    good = write(
        tmp_path, "good.py", '# %%\nprint("a\\n\\nb")\n#> a\n#>\n#> b\nprint("c"); print("d")\n#> c\n#> d\n'
    )
    assert statuses(run(good)) == ["passed"]
    short = write(tmp_path, "short.py", '# %%\nprint("a\\nb")\n#> a\n')
    result = run(short).results[0]
    assert result.status is CellStatus.FAILED and result.diff is not None and "+b" in result.diff


def test_an_ellipsis_matches_anything_and_update_leaves_it(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\nimport time\nprint('took', time.time(), 's')\n#> took ... s\n")
    assert statuses(run(path)) == ["passed"]
    assert update_recipe(path, run(path)).edits == ()


def test_a_print_inside_a_loop_appends_to_the_loops_arrows(tmp_path: Path) -> None:
    text = "# %%\nfor i in range(3):\n    print(i)\n    #> 0\n    #> 1\n    #> 2\nprint('after')\n#> after\n"
    assert statuses(run(write(tmp_path, "loop.py", text))) == ["passed"]
    stale = text.replace("    #> 2\n", "")
    result = run(write(tmp_path, "stale.py", stale)).results[0]
    assert result.reason == f"the #> lines at {tmp_path / 'stale.py'}:4 do not match what line 2 printed"


def test_output_of_a_function_belongs_to_the_statement_that_calls_it(tmp_path: Path) -> None:
    text = """\
        # %%
        import os
        def greet(name):
            print("hello", name)
            os.write(1, b"from the fd\\n")

        greet("you")
        #> hello you
        #> from the fd
        """
    assert statuses(run(write(tmp_path, "calls.py", text))) == ["passed"]


def test_a_statement_that_prints_without_arrows_fails_in_a_cell_with_arrows(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\nprint('quiet?')\nprint('x')\n#> x\n")
    result = run(path).results[0]
    assert result.reason == f"the statement at {path}:2 printed, but no #> lines follow it"


def test_arrows_before_any_statement_fail(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\n#> nothing printed this\nx = 1\n")
    result = run(path).results[0]
    assert result.reason == f"the #> lines at {path}:2 follow no statement"


def test_arrows_inside_a_string_are_text_not_expectations(tmp_path: Path) -> None:
    text = '# %%\ns = """\n#> not a comment\n"""\nprint(len(s))\n#> 18\n'
    assert statuses(run(write(tmp_path, "cells.py", text))) == ["passed"]


def test_future_imports_a_trailing_expression_and_an_expected_error(tmp_path: Path) -> None:
    text = """\
        # %%
        \"\"\"A docstring.\"\"\"
        from __future__ import annotations
        def f(x: undefined_name) -> None:
            print("ok")
        f(1)
        #> ok
        print("last"); 6 * 7
        #> last
        # expect value: 42

        # %%
        print("before")
        #> before
        1 / 0
        print("never")
        #> never
        # expect error: ZeroDivisionError
        """
    transcript = run(write(tmp_path, "cells.py", text))
    assert statuses(transcript) == ["passed", "failed"]
    assert transcript.results[1].reason == (
        f"the #> lines at {tmp_path / 'cells.py'}:17 do not match what line 16 printed"
    )


def test_lines_of_a_percent_expect_block_are_expected_text_not_arrows() -> None:
    from sandrun.arrows import Arrow, arrows

    source = "print('>')\n  #>  two spaces\n#>\n# expect stdout:\n#> >\n"
    assert arrows(source) == [Arrow(2, " two spaces"), Arrow(3, "")]


def test_the_other_expectations_of_the_cell_still_count(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\nprint('x')\n#> x\n# expect stdout:\n# y\n")
    result = run(path).results[0]
    assert result.status is CellStatus.FAILED and result.reason is not None
    assert result.reason.startswith("stdout did not match")


# --- a cell without `#>` --------------------------------------------------------------------------------


def test_a_cell_without_arrows_is_run_as_before_and_the_module_is_not_imported(tmp_path: Path) -> None:
    path = write(
        tmp_path, "doc.md", '```python\nprint("# > not an arrow")\n```\n\n```output\n# > not an arrow\n```\n'
    )
    code = textwrap.dedent(f"""
        import sys
        from sandrun.backends import get_backend
        from sandrun.readers import load_recipe
        from sandrun.runner import RunOptions, run_recipe
        t = run_recipe(load_recipe({str(path)!r}), get_backend("process"), RunOptions())
        print(t.results[0].status.value, t.results[0].printed, "sandrun.arrows" in sys.modules)
        """)
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert ran.stdout.split() == ["passed", "None", "False"], ran.stderr
    path.write_text('```python\nprint("x")\n#> x\n```\n')
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert ran.stdout.split()[0] == "passed" and ran.stdout.split()[-1] == "True", ran.stderr


@pytest.mark.parametrize("backend", ["local", "process"])
def test_the_driver_records_by_statement_only_when_asked(backend: str) -> None:
    from sandrun.backends.base import SandboxOptions

    session = Session.start(get_backend(backend), SandboxOptions())
    try:
        check = "hasattr(builtins, '__sandrun_statement__')\n"
        code = "import builtins\nprint(1)\nfor i in 'ab':\n    print(i)\n" + check
        plain = session.run(CellRequest(code, "cell.py", 10, 10))
        assert plain.printed is None and plain.value == "False"
        asked = session.run(CellRequest(code, "cell.py", 10, 10, by_statement=True))
        assert asked.printed == [
            StatementOutput(10, 10, ""),
            StatementOutput(11, 11, "1\n"),
            StatementOutput(12, 13, "a\nb\n"),
            StatementOutput(14, 14, ""),
        ]
        assert asked.value == "True"  # the marks are there while the cell runs ...
        after = session.run(
            CellRequest("import builtins\nhasattr(builtins, '__sandrun_statement__')", "cell.py", 1, 10)
        )
        assert after.value == "False"  # ... and gone after it
        failing = session.run(
            CellRequest("print('a')\n1 / 0\nprint('b')\n", "cell.py", 1, 10, by_statement=True)
        )
        assert failing.status == "error"
        assert [s.stdout for s in failing.printed or []] == ["a\n", "", ""]
    finally:
        session.close()


def test_a_malformed_record_is_a_protocol_violation() -> None:
    assert done_fields({"ev": "done", "status": "ok", "printed": [[1, 1, "x"]]}).printed == [
        StatementOutput(1, 1, "x")
    ]
    for bad in ("x", [[1, 1]], [[-1, 1, "x"]], [[1, 1, 2]], [["1", 1, "x"]]):
        with pytest.raises(ProtocolViolation):
            done_fields({"ev": "done", "status": "ok", "printed": bad})


# --- --update -------------------------------------------------------------------------------------------

UPDATES = [
    pytest.param(
        "doc.md",
        """\
        Prose.

        ```python
        print('hello')
        #> goodbye
        x = {'a': 1}
        print(x)
        #> {'a': 1}
        for i in range(3):
            print(i)
            #> 0
        print("no arrows yet")
        print(end="")
        #> stale
        ```

        - In a list, quoted:

          > ```python
          > print("a\\nb")
          > #> a
          > ```
        """,
        """\
        Prose.

        ```python
        print('hello')
        #> hello
        x = {'a': 1}
        print(x)
        #> {'a': 1}
        for i in range(3):
            print(i)
            #> 0
            #> 1
            #> 2
        print("no arrows yet")
        #> no arrows yet
        print(end="")
        ```

        - In a list, quoted:

          > ```python
          > print("a\\nb")
          > #> a
          > #> b
          > ```
        """,
        id="markdown",
    ),
    pytest.param(
        "cells.py",
        "# %%\nprint(1)\n#> 2\n\n# %%\nif True:\n    print('x')\n#> old\n# expect stdout:\n# x",
        "# %%\nprint(1)\n#> 1\n\n# %%\nif True:\n    print('x')\n#> x\n# expect stdout:\n# x",
        id="percent",
    ),
    pytest.param(
        "recipe.yaml",
        """\
        cells:
          - code: |
              print("a")
              #> b
              if True:
                  print("c")
          - print(5)  # no arrows: not touched
        """,
        """\
        cells:
          - code: |
              print("a")
              #> a
              if True:
                  print("c")
              #> c
          - print(5)  # no arrows: not touched
        """,
        id="yaml",
    ),
    pytest.param(
        "doc.rst",
        """\
        Title
        =====

        .. note::

           .. code-block:: python

              print("r")
              #> s
        """,
        """\
        Title
        =====

        .. note::

           .. code-block:: python

              print("r")
              #> r
        """,
        id="rst",
    ),
]


@pytest.mark.parametrize(("name", "before", "after"), UPDATES)
def test_update_rewrites_arrows_then_nothing_more(name: str, before: str, after: str, tmp_path: Path) -> None:
    path = write(tmp_path, name, before)
    first = run(path)
    assert "failed" in statuses(first)
    result = update_recipe(path, first)
    assert result.edits and result.notes == ()
    assert path.read_bytes() == textwrap.dedent(after).encode()
    again = run(path)
    assert set(statuses(again)) == {"passed"}
    assert update_recipe(path, again).edits == ()


def test_update_keeps_crlf_and_reports_what_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes(b"```python\r\nprint('x')\r\n#> y\r\n```")
    result = update_recipe(path, run(path))
    assert path.read_bytes() == b"```python\r\nprint('x')\r\n#> x\r\n```"
    edit = result.edits[0]
    assert (edit.what, edit.location, edit.old, edit.new) == ("#> output", f"{path}:3", "y", "x")


def test_arrows_in_several_places_of_one_statement_are_left_with_a_note(tmp_path: Path) -> None:
    text = "# %%\nfor i in range(2):\n    print(i)\n    #> 0\n    print(-i)\n    #> 0\n"
    path = write(tmp_path, "cells.py", text)
    result = update_recipe(path, run(path))
    assert not result.edits
    why = "its #> lines are in several places; edit them by hand"
    assert result.notes == (f"cell 1: #> output ({path}:2) left as it is: {why}",)


def test_output_an_arrow_line_cannot_hold_is_left_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\nprint('a\\rb')\n#> ab\n")
    result = update_recipe(path, run(path))
    assert not result.edits and "carriage return" in result.notes[0]


def test_a_cell_that_raised_keeps_its_arrows(tmp_path: Path) -> None:
    path = write(tmp_path, "cells.py", "# %%\nprint(1)\n#> 2\nraise ValueError\n")
    result = update_recipe(path, run(path))
    assert not result.edits and "raised ValueError" in result.notes[0]


def test_notebook_arrows_are_checked_and_left_with_a_note(tmp_path: Path) -> None:
    cell = {"cell_type": "code", "metadata": {}, "source": ["print(1)\n", "#> 2"], "outputs": []}
    cell["execution_count"] = None
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    transcript = run(path)
    assert statuses(transcript) == ["failed"]
    result = update_recipe(path, transcript)
    assert result.notes and "not rewritten" in result.notes[0]
    assert json.loads(path.read_text())["cells"][0]["source"] == ["print(1)\n", "#> 2"]


def test_the_cli_update_rewrites_and_the_run_after_passes(tmp_path: Path) -> None:
    path = write(tmp_path, "doc.md", "```python\nprint(6 * 7)\n#> 41\n```\n")
    cli = [sys.executable, "-m", "sandrun", "run", "--backend", "process"]
    failed = subprocess.run([*cli, str(path)], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert f"the #> lines at {path}:3 do not match what line 2 printed" in failed.stdout + failed.stderr
    updated = subprocess.run([*cli, "--update", str(path)], capture_output=True, text=True, timeout=120)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert path.read_text() == "```python\nprint(6 * 7)\n#> 42\n```\n"
    assert subprocess.run([*cli, str(path)], capture_output=True, timeout=120).returncode == 0


def test_a_timed_out_cell_with_arrows_is_a_timeout_and_the_interpreter_lives_on(tmp_path: Path) -> None:
    text = """\
        cells:
          - code: |
              print('start')
              #> start
              while True:
                  pass
            timeout: 0.5
          - code: |
              print('next')
              #> next
        """
    transcript = run(write(tmp_path, "recipe.yaml", text))
    assert statuses(transcript) == ["timeout", "passed"]
    assert [s.stdout for s in transcript.results[0].printed or ()] == ["start\n", ""]

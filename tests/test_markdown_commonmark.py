"""Markdown read as CommonMark reads it: fenced blocks in lists, blockquotes and nested containers are cells
with their true lines, the languages that docs use are recognised, and `--update` keeps each container's
prefix. markdown-it-py is the oracle for which blocks exist."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from sandrun.backends import get_backend
from sandrun.model import CellStatus, RunStatus
from sandrun.readers import load_recipe
from sandrun.readers.markdown_doc import CONSOLE, PYTHON, parse
from sandrun.runner import RunOptions, run_recipe
from sandrun.update import update_recipe

NESTED = """\
# Nested

1. A list item:

   ```python
   a = 1
   ```

   - and a nested one:

     ```py3
     b = a + 1
     print(b)
     ```

     ```output
     2
     ```

> A quote:
>
> ```python3
> print("quoted")
> ```
>
> > ```{.python .numberLines}
> > c = 3
> > ```

- > ```pycon
  > >>> a + b + c
  > 6
  > ```

```
>>> print("no language, but a session")
no language, but a session
```

```ipython3
d = 4
```
"""


def read(text: str) -> list[tuple[int, str]]:
    return [(c.line, c.source) for c in parse(text, "doc.md", "0" * 64).cells]


def test_blocks_in_containers_are_cells_with_their_true_lines() -> None:
    assert read(NESTED) == [
        (6, "a = 1\n"),
        (12, "b = a + 1\nprint(b)\n"),
        (23, 'print("quoted")\n'),
        (27, "c = 3\n"),
        (31, "a + b + c\n"),
        (36, 'print("no language, but a session")\n'),
        (41, "d = 4\n"),
    ]


def test_markdown_it_is_the_oracle_for_which_blocks_exist() -> None:
    """Every fence markdown-it-py finds with a Python language (or a `>>>` first line) is a cell, on the
    line after its opening fence; no other block is."""
    found = []
    for token in MarkdownIt("commonmark").parse(NESTED):
        if token.type != "fence" or token.map is None:
            continue
        info = token.info.strip()
        lang = info[2:].split()[0].rstrip("}") if info.startswith("{.") else (info.split() or [""])[0]
        if lang in (*PYTHON, *CONSOLE) or (not lang and token.content.startswith(">>> ")):
            found.append(token.map[0] + 2)
    assert [line for line, _ in read(NESTED)] == found


@pytest.mark.parametrize(
    "lang", ["python", "py", "python3", "py3", "ipython", "ipython3", "{.python}", "{python}"]
)
def test_every_python_language_name_is_read(lang: str) -> None:
    assert read(f"```{lang}\nx = 1\n```\n") == [(2, "x = 1\n")]


def test_a_nested_document_runs_and_passes(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(NESTED)
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions())
    assert transcript.status is RunStatus.PASSED, [(r.status, r.reason) for r in transcript.results]
    assert transcript.count(CellStatus.PASSED) == 7


STALE = """\
- Item:

  ```python
  print("one")
  print("")
  print("three")
  ```

  ```output
  old
  ```

> ```python
> print("x\\n\\ny")
> ```
>
> ```output
> old
> ```

1. A session:

   >>> print("a\\n\\nb")
   old
"""

FRESH = """\
- Item:

  ```python
  print("one")
  print("")
  print("three")
  ```

  ```output
  one

  three
  ```

> ```python
> print("x\\n\\ny")
> ```
>
> ```output
> x
>
> y
> ```

1. A session:

   >>> print("a\\n\\nb")
   a
   <BLANKLINE>
   b
"""


def test_update_keeps_each_containers_prefix(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(
        STALE.replace("1. A session:\n\n   >>>", "1. A session:\n\n   ```pycon\n   >>>") + "   ```\n"
    )
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions(keep_going=True))
    assert transcript.count(CellStatus.FAILED) == 3
    update_recipe(path, transcript)
    want = FRESH.replace("1. A session:\n\n   >>>", "1. A session:\n\n   ```pycon\n   >>>") + "   ```\n"
    assert path.read_text() == want
    again = run_recipe(load_recipe(path), get_backend("process"), RunOptions())
    assert again.status is RunStatus.PASSED


def test_an_unclosed_fence_in_a_list_item_ends_with_the_item() -> None:
    text = textwrap.dedent(
        """\
        - ```python
          x = 1
        Prose after the list.
        """
    )
    assert read(text) == [(2, "x = 1\n")]


# --- no silent skips -------------------------------------------------------------------------------------

UNSUPPORTED = """\
```pycon3
>>> 1
1
```

```python-repl
x = 1
```

```{jupyter-execute}
2
```

```text
>>> 3
3
```

```pytb
Traceback (most recent call last):
ValueError
```

```bash
ls
```

```python
ran = True
```
"""


def test_blocks_that_look_like_python_but_are_not_run_are_listed_with_the_reason() -> None:
    cells = parse(UNSUPPORTED, "doc.md", "0" * 64).cells
    listed = [(c.line, c.skip, c.unsupported and c.unsupported.split(" is ")[0]) for c in cells]
    assert listed == [
        (2, True, "the language 'pycon3'"),
        (7, True, "the language 'python-repl'"),
        (11, True, "the MyST directive ```{jupyter-execute}"),
        (15, True, "a >>> session in a 'text' block (fence it as ```pycon to run it)"),
        (29, False, None),
    ]


def run_cli(path: Path, *extra: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "sandrun", "run", str(path), "--backend", "process", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stderr


def test_the_summary_counts_them_and_strict_fails_on_them(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(UNSUPPORTED)
    code, stderr = run_cli(path)
    assert code == 0, stderr
    assert "(1 passed, 4 skipped)" in stderr
    assert "doc.md:2): skipped (the language 'pycon3' is not one sandrun runs" in stderr
    code, stderr = run_cli(path, "--strict")
    assert code == 1, stderr
    assert f"--strict: {path}:11: found but not run: the MyST directive ```{{jupyter-execute}}" in stderr


def test_sandrun_cells_lists_them(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(UNSUPPORTED)
    done = subprocess.run(
        [sys.executable, "-m", "sandrun", "cells", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "(not run: the language 'python-repl' is not one sandrun runs" in done.stdout


def test_a_skipped_cell_says_why_in_the_transcript(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(UNSUPPORTED)
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions())
    reasons = [r.reason for r in transcript.results if r.status is CellStatus.SKIPPED]
    assert len(reasons) == 4 and all(
        reason and ("sandrun" in reason or ">>>" in reason) for reason in reasons
    )


INDENTED = """\
# Indented

The way doctest reads a README:

    >>> x = 20
    >>> x + 1
    old

- and in a list item:

      >>> print(x * 2)
      old

    plain indented code, not a session, is prose
"""


def test_an_indented_code_block_holding_a_session_is_read_as_one() -> None:
    assert read(INDENTED) == [(5, "x = 20\n"), (6, "x + 1\n"), (11, "print(x * 2)\n")]


def test_an_indented_session_is_updated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(INDENTED)
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions(keep_going=True))
    assert transcript.count(CellStatus.FAILED) == 2
    update_recipe(path, transcript)
    assert path.read_text() == INDENTED.replace("    old", "    21", 1).replace("      old", "      40")
    assert run_recipe(load_recipe(path), get_backend("process"), RunOptions()).status is RunStatus.PASSED


def test_an_indented_block_that_is_not_a_session_is_listed_not_refused() -> None:
    # A README's indented block may start with a prompt and go on as plain code (doctest runs the first
    # line and reads the rest as prose): listed as skipped with the reason, the document still runs.
    text = "Intro.\n\n    >>> import math\n\n    x = math.pi\n    print(x)\n\n```python\nprint(1)\n```\n"
    first, second = parse(text, "doc.md", "0" * 64).cells
    assert first.skip and first.unsupported is not None and "not a session" in first.unsupported
    assert (first.line, second.line) == (3, 9)

"""MyST's ```` ```{eval-rst} ```` blocks: the reST inside is read by the reStructuredText reader, at the lines
of the Markdown file (also in a list item), run in the same interpreter as the Markdown blocks, and
`--update` rewrites a `.. testoutput::` or a `>>>` session inside it and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandrun.errors import RecipeError
from sandrun.readers.markdown_doc import parse

DOC = """\
# Mixed

```python
base = 40
```

```{eval-rst}
.. testcode::

   print(base + 2)

.. testoutput::

   42

.. doctest::

   >>> base * 2
   80
```

- A list item:

  ```{eval-rst}
  .. code-block:: python

     after = base + 1
  ```

```python
print(after)
```

```output
41
```
"""


def read(text: str) -> list[tuple[int, str]]:
    return [(c.line, c.source) for c in parse(text, "doc.md", "0" * 64).cells]


def test_examples_inside_are_cells_at_the_lines_of_the_markdown_file() -> None:
    assert read(DOC) == [
        (4, "base = 40\n"),
        (10, "print(base + 2)\n"),
        (18, "base * 2\n"),
        (27, "after = base + 1\n"),
        (31, "print(after)\n"),
    ]
    recipe = parse(DOC, "doc.md", "0" * 64)
    stdout, repl = recipe.cells[1].expect.stdout, recipe.cells[2].expect.repl
    assert stdout is not None and (stdout.text, stdout.line) == ("42\n", 14)
    assert stdout.span is not None and DOC[slice(*stdout.span)] == "   42\n"
    assert repl is not None and (repl.text, repl.line) == ("80\n", 19)


def test_without_examples_it_is_prose_and_its_mistakes_are_at_their_line() -> None:
    assert read("```{eval-rst}\n.. note:: Just a note.\n```\n\n```python\nx = 1\n```\n") == [(6, "x = 1\n")]
    with pytest.raises(RecipeError) as info:
        parse(
            "```{eval-rst}\n.. sandrun: nope\n.. code-block:: python\n\n   x = 1\n```\n", "doc.md", "0" * 64
        )
    assert info.value.line == 2 and "option 'nope' is unknown" in str(info.value)
    with pytest.raises(RecipeError) as info:
        parse("```{eval-rst}\n.. sandrun-settings:\n\n   timeout: 3\n\n>>> 1\n1\n```\n", "doc.md", "0" * 64)
    assert info.value.line == 2 and "front matter" in str(info.value)


def test_in_a_blockquote_it_is_listed_as_not_run() -> None:
    text = "> ```{eval-rst}\n> .. code-block:: python\n>\n>    x = 1\n> ```\n\n```python\ny = 2\n```\n"
    cells = parse(text, "doc.md", "0" * 64).cells
    assert [(c.line, c.unsupported is not None) for c in cells] == [(2, True), (8, False)]


def run(path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    command = [sys.executable, "-m", "sandrun", "run", str(path), "--backend", "local", "--format", "json"]
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_end_to_end_and_update_is_byte_minimal(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_bytes(DOC.encode())
    code, transcript, err = run(doc)
    assert code == 0, err
    assert [c["status"] for c in transcript["cells"]] == ["passed"] * 5

    stale = DOC.replace("   42\n", "   43\n").replace("   80\n", "   81\n")
    doc.write_bytes(stale.encode())
    code, transcript, err = run(doc, "--keep-going")
    assert code == 1
    assert "expected at line 14" in err, err
    code, _, err = run(doc, "--update")
    assert code == 0, err
    assert doc.read_bytes() == DOC.encode()  # exactly the two stale lines changed back


def test_update_rewrites_a_myst_testoutput_whose_options_stand_before_its_body(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    fixed = (
        '```{testcode}\nprint("a  b")\n```\n\n```{testoutput}\n:options: +NORMALIZE_WHITESPACE\na  b\n```\n'
    )
    doc.write_text(fixed.replace("a  b\n```", "stale\n```"))
    code, _, err = run(doc, "--update")
    assert code == 0, err
    assert doc.read_text() == fixed

"""MyST directives that hold Python, run as the plain fences they stand for, with their true lines."""

from __future__ import annotations

from pathlib import Path

from sandrun.backends import get_backend
from sandrun.model import ANY_EXCEPTION, CellStatus
from sandrun.readers import load_recipe
from sandrun.readers.markdown_doc import parse
from sandrun.runner import RunOptions, run_recipe

DOC = """\
```{testsetup}
import math
```

```{code-cell} ipython3
:tags: [raises-exception]
1 / 0
```

```{code-cell} python
---
tags: [skip-execution]
---
never()
```

```{code-block} python
:caption: a caption, for the renderer
:emphasize-lines: 1
print(math.floor(2.5))
```

```{testcode}
print("tested")
```

```{testoutput}
tested
```

```{doctest}
:options: +NORMALIZE_WHITESPACE
>>> print("a   b")
a b
```

```{code-cell} bash
ls
```
"""


def test_directives_are_cells_with_their_true_lines() -> None:
    cells = parse(DOC, "doc.md", "0" * 64).cells
    assert [(c.line, c.source, c.skip, c.expect.error) for c in cells] == [
        (2, "import math\n", False, None),
        (7, "1 / 0\n", False, ANY_EXCEPTION),
        (14, "never()\n", True, None),
        (20, "print(math.floor(2.5))\n", False, None),
        (24, 'print("tested")\n', False, None),
        (33, 'print("a   b")\n', False, None),
    ]
    assert cells[4].expect.stdout is not None and cells[4].expect.stdout.line == 28


def test_a_myst_document_runs(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text(DOC)
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions())
    assert [r.status for r in transcript.results] == [
        CellStatus.PASSED,
        CellStatus.PASSED,
        CellStatus.SKIPPED,
        CellStatus.PASSED,
        CellStatus.PASSED,
        CellStatus.PASSED,
    ], [(r.status, r.reason) for r in transcript.results]


def test_a_stale_testoutput_fails() -> None:
    text = DOC.replace("```{testoutput}\ntested", "```{testoutput}\nstale")
    cells = parse(text, "doc.md", "0" * 64).cells
    assert cells[4].expect.stdout is not None and cells[4].expect.stdout.text == "stale\n"


def test_eval_rst_examples_are_read_by_the_rst_reader() -> None:
    text = (
        "```{eval-rst}\n.. autoclass:: Foo\n```\n\n"
        "```{eval-rst}\n.. code-block:: python\n\n   x = 1\n```\n\n"
        "```python\n1\n```\n"
    )
    cells = parse(text, "doc.md", "0" * 64).cells
    assert [(c.line, c.source, c.unsupported) for c in cells] == [(8, "x = 1\n", None), (12, "1\n", None)]

"""A `>>>` example runs as a console runs it: the value of every expression statement is shown, also inside
a loop or a `with` block (doctest compiles examples in "single" mode); a plain Python block runs as a
script, where only a trailing expression's value is kept."""

from __future__ import annotations

from pathlib import Path

from sandrun.backends import get_backend
from sandrun.model import CellStatus
from sandrun.readers import load_recipe
from sandrun.runner import RunOptions, run_recipe

PAGE = """\
```pycon
>>> for n in range(3):
...     n * 10
0
10
20
>>> with open("/dev/null") as f:
...     f.name
...     print("inside")
'/dev/null'
inside
>>> 6 * 7
42
>>> None
>>> x = 5; x; x + 1
5
6
```

```python
for n in range(3):
    n * 10
```

```output
```
"""


def test_a_console_shows_every_expression_statement_and_a_script_does_not(tmp_path: Path) -> None:
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions(keep_going=True))
    assert [(r.status, r.diff) for r in transcript.results] == [(CellStatus.PASSED, None)] * 6
    assert transcript.results[2].value == "42"  # a trailing expression is still the value, shown once

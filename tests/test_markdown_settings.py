"""Settings in a Markdown document's YAML front matter, under `sandrun:`, checked as a YAML recipe's
top-level keys are; other tools' front matter is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.errors import RecipeError
from sandrun.model import RunStatus
from sandrun.readers import load_recipe
from sandrun.readers.markdown_doc import parse
from sandrun.runner import RunOptions, run_recipe

DOC = """\
---
title: For the site generator   # not ours
# a YAML comment, not a heading
sandrun:
  timeout: 7
  env: {GREETING: hello}
  network: false
---

```python
import os
print(os.environ["GREETING"])
```

```output
hello
```
"""


def test_front_matter_settings_apply_and_lines_keep_their_numbers(tmp_path: Path) -> None:
    recipe = parse(DOC, "doc.md", "0" * 64)
    assert (recipe.timeout, dict(recipe.env), recipe.network, recipe.name) == (
        7.0,
        {"GREETING": "hello"},
        False,
        None,
    )
    assert [c.line for c in recipe.cells] == [11]
    path = tmp_path / "doc.md"
    path.write_text(DOC)
    assert run_recipe(load_recipe(path), get_backend("process"), RunOptions()).status is RunStatus.PASSED


def test_front_matter_without_our_key_is_left_alone() -> None:
    recipe = parse("---\ntitle: x\ntags: [a]\n---\n# Title\n\n```python\n1\n```\n", "doc.md", "0" * 64)
    assert (recipe.name, recipe.timeout) == ("Title", None)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("---\nsandrun:\n  timeout: 0\n---\n```python\n1\n```\n", 3, "timeout must be more than 0"),
        ("---\nsandrun:\n  timout: 3\n---\n```python\n1\n```\n", 3, "did you mean 'timeout'"),
        ("---\nsandrun:\n  cells: [x]\n---\n```python\n1\n```\n", 3, "unknown key 'cells'"),
        ("---\nsandrun: [\n---\n```python\n1\n```\n", 3, "invalid YAML front matter"),
    ],
)
def test_a_wrong_setting_is_refused_at_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        parse(text, "doc.md", "0" * 64)
    assert str(caught.value).startswith(f"doc.md:{line}: "), str(caught.value)
    assert message in str(caught.value)

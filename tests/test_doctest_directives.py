"""doctest's conventions in `>>>` sessions: `# doctest:` directives per example and per block, several at
once, compared with the standard library's `doctest.OutputChecker`; run for real in the process backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.errors import RecipeError
from sandrun.model import CellStatus
from sandrun.readers import load_recipe
from sandrun.readers.markdown_doc import parse
from sandrun.runner import RunOptions, run_recipe

PASSING = """\
```pycon
>>> import random
>>> random.random()  # doctest: +SKIP
0.123
>>> print(list(range(20)))  # doctest: +NORMALIZE_WHITESPACE
[0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
>>> print(list(range(30)))  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
[0,   1, ...,  29]
>>> 22 / 7  # doctest: +NUMBER
3.14
>>> import json
>>> json.loads("{")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
decoder.JSONDecodeError: a message that is not the real one
>>> print("a\\n\\nb")
a
<BLANKLINE>
b
```

```pycon doctest="+NORMALIZE_WHITESPACE +NUMBER"
>>> print(1 / 3, "  x")
0.33 x
>>> print("a  b")  # doctest: -NORMALIZE_WHITESPACE
a  b
```
"""


def run(tmp_path: Path, text: str) -> list[tuple[CellStatus, str | None]]:
    path = tmp_path / "doc.md"
    path.write_text(text)
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions(keep_going=True))
    return [(r.status, r.reason) for r in transcript.results]


def test_directives_per_example_and_per_block(tmp_path: Path) -> None:
    results = run(tmp_path, PASSING)
    assert [status for status, _ in results] == [
        CellStatus.PASSED,
        CellStatus.SKIPPED,
        *[CellStatus.PASSED] * 8,
    ], results


@pytest.mark.parametrize(
    "example",
    [
        ">>> print('a  b')\na b\n",  # whitespace matters without NORMALIZE_WHITESPACE
        ">>> 22 / 7\n3.14\n",  # a number matches to its precision only under NUMBER
        ">>> 22 / 7  # doctest: +NUMBER\n3.15\n",  # and then only to that precision
        ">>> int('x')  # doctest: +IGNORE_EXCEPTION_DETAIL\n"
        "Traceback (most recent call last):\nKeyError: x\n",
    ],
)
def test_without_the_right_directive_the_example_fails(tmp_path: Path, example: str) -> None:
    assert run(tmp_path, f"```pycon\n{example}```\n")[0][0] is CellStatus.FAILED


def test_an_unknown_directive_is_refused_at_its_line() -> None:
    with pytest.raises(RecipeError, match=r"doc\.md:3: '\+FANCY' is not a doctest directive"):
        parse("```pycon\n>>> 1\n>>> 2  # doctest: +FANCY\n2\n```\n", "doc.md", "0" * 64)


def test_a_comment_between_examples_is_prose() -> None:
    text = "```{doctest}\n\n>>> x = 1\n\n# Note: a comment, as Sphinx docs write them\n>>> x\n1\n```\n"
    cells = parse(text, "doc.md", "0" * 64).cells
    assert [(c.line, c.source) for c in cells] == [(3, "x = 1\n"), (6, "x\n")]

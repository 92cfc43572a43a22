"""`.. doctest::` (reST) and ```` ```{doctest} ```` (MyST) are checked as Sphinx checks them: with its default
`doctest_default_flags`, so a traceback's message is not compared (IGNORE_EXCEPTION_DETAIL), unless the block
turns the flag off. A plain `>>>` session is checked as doctest checks it, message and all."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.model import CellStatus
from sandrun.readers import load_recipe
from sandrun.runner import RunOptions, run_recipe

SESSION = """\
>>> int("x")
Traceback (most recent call last):
   ...
ValueError: ("invalid literal for int() with base 10: 'x'")
"""
INDENTED = "".join("   " + line + "\n" for line in SESSION.splitlines())

PASSING = {
    "page.rst": ".. doctest::\n\n" + INDENTED,
    "page.md": "```{doctest}\n" + SESSION + "```\n",
}
FAILING = {  # the controls: where Sphinx's defaults do not apply, or are turned off
    "plain.rst": "Example::\n\n" + INDENTED,
    "plain.md": "```pycon\n" + SESSION + "```\n",
    "off.rst": ".. doctest::\n   :options: -IGNORE_EXCEPTION_DETAIL\n\n" + INDENTED,
    "off.md": "```{doctest}\n:options: -IGNORE_EXCEPTION_DETAIL\n" + SESSION + "```\n",
}


def status(tmp_path: Path, name: str, text: str) -> CellStatus:
    path = tmp_path / name
    path.write_text(text)
    (result,) = run_recipe(load_recipe(path), get_backend("process"), RunOptions()).results
    return result.status


@pytest.mark.parametrize("name", sorted(PASSING))
def test_a_sphinx_doctest_block_ignores_the_exceptions_detail(tmp_path: Path, name: str) -> None:
    assert status(tmp_path, name, PASSING[name]) is CellStatus.PASSED


@pytest.mark.parametrize("name", sorted(FAILING))
def test_elsewhere_the_message_is_compared(tmp_path: Path, name: str) -> None:
    assert status(tmp_path, name, FAILING[name]) is CellStatus.FAILED

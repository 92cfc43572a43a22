"""Whitespace in expected output: spaces and tabs at the end of a line never matter (editors strip them and a
screen does not show them); a mismatch in whitespace alone is said and shown (`·` a space, `→` a tab) in
the console, the Markdown report and JUnit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.expect import judge, text_matches
from sandrun.model import CellStatus, Expectation, ExpectedText, MatchMode
from sandrun.readers import load_recipe
from sandrun.reports.junit import render_junit
from sandrun.reports.markdown import render_markdown
from sandrun.runner import RunOptions, run_recipe


@pytest.mark.parametrize("mode", [MatchMode.ELLIPSIS, MatchMode.EXACT, MatchMode.WHITESPACE])
@pytest.mark.parametrize(
    ("expected", "actual"),
    [("a\nb\n", "a  \nb\t\n"), ("a  \nb \n", "a\nb\n"), ("a\n\nb\n", "a\n  \nb\n")],
)
def test_spaces_at_line_ends_never_matter(mode: MatchMode, expected: str, actual: str) -> None:
    assert text_matches(ExpectedText(expected, mode), actual)


def test_spaces_inside_a_line_still_matter_and_the_diff_shows_them() -> None:
    expect = Expectation(stdout=ExpectedText("a b\n\tc\n", MatchMode.EXACT))
    verdict = judge(expect, None, (), {"stdout": "a  b\n    c\n"})
    assert verdict.status is CellStatus.FAILED
    assert verdict.reason is not None and "only whitespace differs" in verdict.reason
    assert verdict.diff is not None
    assert "-a·b\n" in verdict.diff and "+a··b\n" in verdict.diff
    assert "-→c\n" in verdict.diff and "+····c\n" in verdict.diff


def test_a_diff_in_more_than_whitespace_is_shown_as_it_is() -> None:
    expect = Expectation(stdout=ExpectedText("a b\n", MatchMode.EXACT))
    verdict = judge(expect, None, (), {"stdout": "a c\n"})
    assert verdict.reason is not None and "whitespace" not in verdict.reason
    assert verdict.diff is not None and "-a b" in verdict.diff


def test_every_report_shows_a_whitespace_diff(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text('```python\nprint("a  b")\n```\n\n```output\na b   \n```\n')
    transcript = run_recipe(load_recipe(path), get_backend("process"), RunOptions())
    assert transcript.results[0].status is CellStatus.FAILED
    assert "a··b" in render_markdown(transcript) and "only whitespace differs" in render_markdown(transcript)
    assert "a··b" in render_junit([transcript]) and "only whitespace differs" in render_junit([transcript])
    command = [sys.executable, "-m", "sandrun", "run", str(path), "--backend", "process"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "+a··b" in done.stderr and "only whitespace differs" in done.stderr


def test_ellipsis_ignores_spaces_at_line_ends_too() -> None:
    assert text_matches(ExpectedText("x ...\ny\n"), "x 1   \ny \n")

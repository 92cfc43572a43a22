"""Durations shown to people: one format on the terminal, in the Markdown and HTML reports and in pytest's
failure reports (machine formats keep numbers of seconds)."""

from __future__ import annotations

import dataclasses

import pytest

from sandrun.console import Console
from sandrun.durations import format_duration
from sandrun.pytest_recipes import describe_failure
from sandrun.reports.html import render_html
from sandrun.reports.markdown import render_markdown
from tests.factories import make_transcript


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0.0 ms"),
        (0.0004, "0.4 ms"),  # a fast cell does not read as "0 ms"
        (0.0123, "12.3 ms"),
        (0.25, "250.0 ms"),
        (0.99994, "999.9 ms"),
        (0.99996, "1.00 s"),  # not "1000.0 ms"
        (1.0, "1.00 s"),
        (2.346, "2.35 s"),
        (59.994, "59.99 s"),
        (59.996, "1 min 00 s"),  # not "60.00 s"
        (187.4, "3 min 07 s"),
        (7322.0, "122 min 02 s"),
    ],
)
def test_durations_are_shown_in_the_unit_that_reads_best(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_every_report_for_people_shows_durations_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    t = make_transcript(duration=187.4)
    cell = dataclasses.replace(t.results[1], duration=0.0004)
    t = dataclasses.replace(t, results=(t.results[0], cell, *t.results[2:]))
    console = Console(quiet=False)
    console.cell_finished(cell)
    console.summary(t)
    shown = {
        "console": capsys.readouterr().err,
        "markdown": render_markdown(t),
        "html": render_html([t]),
        "pytest": describe_failure(cell),
    }
    for where, text in shown.items():
        assert "0.4 ms" in text, where
        if where != "pytest":
            assert "3 min 07 s" in text, where

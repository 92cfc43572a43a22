"""GitHub Actions annotations: which cells get one, at which line, and how values are escaped."""

from __future__ import annotations

import dataclasses

import pytest

from sandrun.model import CellError, CellKind, CellStatus, Expectation, ExpectedText, RunStatus
from sandrun.reports.annotations import escape_data, escape_property, github_annotations, shorten
from tests.factories import DIFF, PATH, TRACEBACK, make_transcript, with_cells

ENCODED_DIFF = "--- expected stdout%0A+++ actual stdout%0A@@ -1 +1 @@%0A-hello%0A+goodbye"


def test_escaping_follows_the_runner_rules() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext%3A a%2C b"
    assert escape_data("%0A") == "%250A"


def test_failing_cells_of_the_demo_transcript() -> None:
    assert github_annotations([make_transcript()]) == [
        f"::error file={PATH},line=12,title=boom failed::unexpected ZeroDivisionError",
        f"::error file={PATH},line=22,title=cell 7 timed out::ran past its 2 s time limit",
    ]


def test_passed_skipped_not_run_and_prose_cells_are_silent() -> None:
    t = with_cells(
        ({}, {"error": CellError("ValueError", "expected", TRACEBACK, 2)}),
        ({"skip": True}, {"status": CellStatus.SKIPPED, "reason": "skip: true in the recipe"}),
        ({}, {"status": CellStatus.NOT_RUN, "reason": "not run"}),
        ({"kind": CellKind.MARKDOWN}, {"status": CellStatus.NOT_RUN, "reason": "not run"}),
        status=RunStatus.FAILED,
    )
    assert github_annotations([t]) == []


def test_mismatch_points_at_the_expected_output_and_carries_the_diff() -> None:
    expect = Expectation(error="ValueError", stdout=ExpectedText("hello\n", line=14))
    raised = CellError("ValueError", "bad", TRACEBACK, 12)
    failed = {
        "status": CellStatus.FAILED,
        "reason": "stdout did not match (expected at line 14)",
        "mismatch": "stdout",
    }
    t = with_cells(({"expect": expect, "line": 10}, {**failed, "diff": DIFF, "error": raised}))
    assert github_annotations([t]) == [
        f"::error file={PATH},line=14,title=cell 1 failed::stdout did not match (expected at line 14)%0A"
        + ENCODED_DIFF
    ]


@pytest.mark.parametrize(
    ("expected_line", "mismatch", "error_line", "line"),
    [
        (5, "value", 12, 5),  # the expected text's line, over the exception's
        (None, "value", 12, 12),  # no expected line at all: the exception's line
        (None, "value", None, 10),  # nothing: the cell's first line
        (5, "stdout", 12, 12),  # a mismatch of a text the cell does not expect: the exception's line
        (20, None, 12, 12),  # not a mismatch
        (20, None, None, 10),
    ],
)
def test_line_selection(
    expected_line: int | None, mismatch: str | None, error_line: int | None, line: int
) -> None:
    expect = Expectation(value=ExpectedText("1", line=expected_line))
    raised = CellError("KeyError", "'x'", TRACEBACK, error_line)
    # The reason is words for people: it is never read for a line number or for what mismatched.
    failed = {"status": CellStatus.FAILED, "reason": "value did not match (expected at line 8)"}
    t = with_cells(({"expect": expect, "line": 10}, {**failed, "mismatch": mismatch, "error": raised}))
    (annotation,) = github_annotations([t])
    assert annotation.startswith(f"::error file={PATH},line={line},title=cell 1 failed::")


def test_properties_and_message_are_escaped() -> None:
    recipe = dataclasses.replace(make_transcript().recipe, path="odd dir/a,b:c.py")
    t = with_cells(
        ({"name": "step 1: load, parse"}, {"status": CellStatus.FAILED, "reason": "100% wrong\r\nreally"}),
        recipe=recipe,
    )
    assert github_annotations([t]) == [
        "::error file=odd dir/a%2Cb%3Ac.py,line=1,title=step 1%3A load%2C parse failed"
        "::100%25 wrong%0D%0Areally"
    ]


def test_sandbox_errors_and_reasonless_failures() -> None:
    died = CellError("SandboxDied", "killed by signal 9")
    t = with_cells(
        (
            {"line": 4},
            {"status": CellStatus.ERROR, "reason": "the sandbox died: killed by signal 9", "error": died},
        ),
        ({"line": 7}, {"status": CellStatus.FAILED, "error": CellError("OSError", "disk full")}),
        ({"line": 9}, {"status": CellStatus.TIMEOUT}),
        status=RunStatus.ERROR,
    )
    assert github_annotations([t]) == [
        f"::error file={PATH},line=4,title=cell 1 errored::the sandbox died: killed by signal 9",
        f"::error file={PATH},line=7,title=cell 2 failed::OSError: disk full",
        f"::error file={PATH},line=9,title=cell 3 timed out::timeout",
    ]


def test_run_that_stopped_without_an_erroring_cell_is_annotated_on_the_file() -> None:
    t = with_cells(
        ({}, {"status": CellStatus.NOT_RUN, "reason": "not run"}),
        status=RunStatus.ERROR,
        reason="the sandbox could not start: no bwrap",
    )
    stopped = dataclasses.replace(t, status=RunStatus.INTERRUPTED, reason=None)
    assert github_annotations([t, stopped]) == [
        f"::error file={PATH},title=Demo recipe errored::the sandbox could not start: no bwrap",
        f"::error file={PATH},title=Demo recipe interrupted::the run ended with status interrupted",
    ]


def test_several_transcripts_in_order_and_one_line_each() -> None:
    nasty = with_cells(({}, {"status": CellStatus.FAILED, "reason": "a\nb\rc", "diff": "x\r\ny\n"}))
    annotations = github_annotations([make_transcript(), nasty, make_transcript()])
    assert [a.split(",")[1] for a in annotations] == ["line=12", "line=22", "line=1", "line=12", "line=22"]
    assert all("\n" not in a and "\r" not in a for a in annotations)
    assert annotations[2].endswith("::a%0Ab%0Dc%0Ax%0D%0Ay")


def test_shorten_cuts_long_diffs_and_lines() -> None:
    diff = "".join(f"+line {n}\n" for n in range(30))
    assert shorten(diff).split("\n") == [f"+line {n}" for n in range(20)] + ["... (10 more lines)"]
    assert shorten("+" + "x" * 300, max_chars=10) == "+xxxxxxxx…"
    assert shorten(DIFF) == DIFF.rstrip("\n")

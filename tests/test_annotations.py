"""GitHub Actions annotations: which cells get one, at which line, and how values are escaped."""

from __future__ import annotations

import dataclasses

import pytest

from sandrun.model import (
    Cell,
    CellError,
    CellKind,
    CellStatus,
    Expectation,
    ExpectedText,
    RunStatus,
    StatementOutput,
)
from sandrun.reports.annotations import escape_data, escape_property, github_annotations, shorten
from sandrun.runner import result_of
from sandrun.session import CellOutcome
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
        "mismatch_line": 14,
    }
    t = with_cells(({"expect": expect, "line": 10}, {**failed, "diff": DIFF, "error": raised}))
    assert github_annotations([t]) == [
        f"::error file={PATH},line=14,title=cell 1 failed::stdout did not match (expected at line 14)%0A"
        + ENCODED_DIFF
    ]


@pytest.mark.parametrize(
    ("mismatch_line", "error_line", "line"),
    [
        (5, 12, 5),  # where the output that did not match is expected, over the exception's line
        (None, 12, 12),  # not known, or not a mismatch: the exception's line
        (None, None, 10),  # nothing: the cell's first line
    ],
)
def test_line_selection(mismatch_line: int | None, error_line: int | None, line: int) -> None:
    expect = Expectation(value=ExpectedText("1", line=20))
    raised = CellError("KeyError", "'x'", TRACEBACK, error_line)
    # The reason is words for people: it is never read for a line number or for what mismatched.
    failed = {"status": CellStatus.FAILED, "reason": "value did not match (expected at line 8)"}
    result = {**failed, "mismatch": "value", "mismatch_line": mismatch_line, "error": raised}
    t = with_cells(({"expect": expect, "line": 10}, result))
    (annotation,) = github_annotations([t])
    assert annotation.startswith(f"::error file={PATH},line={line},title=cell 1 failed::")


@pytest.mark.parametrize(
    ("source", "printed", "line"),
    [
        # the first #> lines that do not say what their statement printed
        ("x = 1\nprint(x)\n#> 1\nprint(2)\n#> 3\n", ((20, "", 20), (21, "1\n", 21), (23, "2\n", 23)), 24),
        # a statement that printed without #> lines: its own line
        ("x = 1\nprint(x)\n#> 1\nprint(2)\n", ((20, "", 20), (21, "1\n", 21), (23, "2\n", 23)), 23),
        # #> lines before any statement
        ("#> 1\nx = 1\n", ((21, "", 21),), 20),
    ],
)
def test_arrow_mismatches_point_at_their_line_whatever_the_reason_says(
    source: str, printed: tuple[tuple[int, str, int], ...], line: int
) -> None:
    """The line comes from the verdict (`judge_arrows` to `CellResult.mismatch_line`): rewording the
    reason, or a reason that names another line, moves no annotation."""
    cell = Cell(0, source, PATH, 20)
    statements = [StatementOutput(start, end, stdout) for start, stdout, end in printed]
    judged = result_of(cell, CellOutcome("ok", printed=statements))
    assert judged.status is CellStatus.FAILED and judged.mismatch_line == line
    for reason in (judged.reason, "reworded", f"the #> lines at {PATH}:99 do not match what line 98 printed"):
        t = with_cells(status=RunStatus.FAILED)
        t = dataclasses.replace(t, results=(dataclasses.replace(judged, reason=reason),))
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

"""Matching what a cell did against what the recipe expects."""

from __future__ import annotations

import re

import pytest

from sandrun.expect import error_matches, judge, judge_error, text_matches
from sandrun.model import ANY_EXCEPTION, CellError, CellStatus, Expectation, ExpectedText, MatchMode

DECODE_ERROR = ("json.decoder.JSONDecodeError", "ValueError", "Exception", "BaseException")


@pytest.mark.parametrize(
    ("expected", "matches"),
    [
        ("json.decoder.JSONDecodeError", True),
        ("json.JSONDecodeError", True),  # the name users know: the package above the defining module
        ("JSONDecodeError", True),
        ("ValueError", True),  # a base class
        (ANY_EXCEPTION, True),
        ("yaml.JSONDecodeError", False),
        ("decoder.JSONDecodeError", False),  # not a package prefix
        ("TypeError", False),
        ("DecodeError", False),
    ],
)
def test_error_names_match_by_class_and_module(expected: str, matches: bool) -> None:
    assert error_matches(expected, DECODE_ERROR) is matches


@pytest.mark.parametrize(
    ("mode", "expected", "actual", "matches"),
    [
        (MatchMode.ELLIPSIS, "took ... s", "took 0.25 s\n", True),
        (MatchMode.ELLIPSIS, "a\n...\nz", "a\nb\nc\nz", True),
        (MatchMode.ELLIPSIS, "ab...ba", "aba", False),  # the pieces may not overlap
        (MatchMode.ELLIPSIS, "x", "y", False),
        (MatchMode.EXACT, "42", "42\n", True),  # trailing newlines never matter
        (MatchMode.EXACT, "4...", "42", False),
        (MatchMode.REGEX, r"id=[0-9a-f]{4}", "id=beef", True),
        (MatchMode.REGEX, r"id=[0-9a-f]{4}", "id=beef!", False),  # the whole output
        (MatchMode.WHITESPACE, "a b c", "a   b\n c ", True),
        (MatchMode.WHITESPACE, "a b c", "abc", False),
    ],
)
def test_match_modes(mode: MatchMode, expected: str, actual: str, matches: bool) -> None:
    assert text_matches(ExpectedText(expected, mode), actual) is matches


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("...aa...aa...", "aaa", False),  # two pieces may not share the middle "a"
        ("...aa...aa...", "aaaa", True),
        ("a...b...b", "ab", False),  # a middle piece may not reuse the end
        ("a...b...b", "abb", True),
        ("ab...b...", "ab", False),  # nor the start
        ("ab...b...", "abb", True),
        ("x...yzy...zyz", "xyzyz", False),
        ("x...yzy...zyz", "xyzyzyz", True),
    ],
)
def test_ellipsis_pieces_never_overlap_as_doctest_says(expected: str, actual: str, matches: bool) -> None:
    import doctest

    oracle = doctest.OutputChecker().check_output(expected, actual, doctest.ELLIPSIS)
    assert oracle is matches  # doctest's own ELLIPSIS, the rule users know
    assert text_matches(ExpectedText(expected, MatchMode.ELLIPSIS), actual) is matches


@pytest.mark.parametrize(
    ("pattern", "shown"),
    [
        (re.escape("something else"), "'something else'"),  # plain text, as a Markdown traceback gives it
        ("(?s)" + ".*".join(map(re.escape, ["got ", " items"])), "'got ... items'"),
        (r"invalid literal for int\(\) with base \d+", r"'invalid literal for int\(\) with base \d+'"),
    ],
)
def test_a_wrong_error_message_is_shown_as_the_user_wrote_it(pattern: str, shown: str) -> None:
    expect = Expectation(error="ValueError", error_message=pattern)
    raised = CellError("ValueError", "nothing like it")
    verdict = judge_error(expect, raised, ("ValueError",))
    assert verdict.status is CellStatus.FAILED
    assert verdict.reason == f"raised ValueError: nothing like it, but the message does not match {shown}"


def test_a_verdict_names_the_expected_text_that_did_not_match() -> None:
    expect = Expectation(stdout=ExpectedText("a"), value=ExpectedText("1", line=7))
    verdict = judge(expect, None, (), {"stdout": "a\n", "stderr": "", "value": "2"})
    assert (verdict.status, verdict.mismatch, verdict.mismatch_line) == (CellStatus.FAILED, "value", 7)
    assert verdict.reason == "value did not match (expected at line 7)"
    assert judge(expect, None, (), {"stdout": "a\n", "stderr": "", "value": "1"}).mismatch is None
    raised = CellError("KeyError", "'x'")
    assert judge(expect, raised, ("KeyError",), {"stdout": "b", "value": None}).mismatch is None

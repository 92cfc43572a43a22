"""Judging a cell: did what it did match what the recipe expected?

Expected text is compared by `MatchMode` (doctest-style `...` by default); trailing newlines never matter.
A mismatch fails the cell with a unified diff, expected against actual.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sandrun.model import ANY_EXCEPTION, CellError, CellStatus, Expectation, ExpectedText, MatchMode

ELLIPSIS = "..."


@dataclass(frozen=True)
class Verdict:
    """A judged cell: its status, why (unless it passed), and the diff when output did not match."""

    status: CellStatus
    reason: str | None = None
    diff: str | None = None


def error_matches(expected: str, raised: Sequence[str]) -> bool:
    """True if an exception whose class and bases are `raised` satisfies `expected`.

    `expected` names the class or any base (`OSError` accepts `FileNotFoundError`), with or without its
    module or a package above it (`json.JSONDecodeError` and `JSONDecodeError` both match
    `json.decoder.JSONDecodeError`), or is `ANY_EXCEPTION`.
    """
    if expected == ANY_EXCEPTION:
        return True
    module, _, name = expected.rpartition(".")
    for raised_name in raised:
        raised_module, _, raised_class = raised_name.rpartition(".")
        if raised_class == name and (
            not module or raised_module == module or raised_module.startswith(module + ".")
        ):
            return True
    return False


def text_matches(expected: ExpectedText, actual: str) -> bool:
    """Whether `actual` satisfies `expected` under its match mode."""
    want, got = expected.text.rstrip("\n"), actual.rstrip("\n")
    if expected.mode is MatchMode.EXACT:
        return want == got
    if expected.mode is MatchMode.REGEX:
        return re.fullmatch(want, got) is not None
    if expected.mode is MatchMode.WHITESPACE:
        return " ".join(want.split()) == " ".join(got.split())
    return ellipsis_matches(want, got)


def ellipsis_matches(want: str, got: str) -> bool:
    """doctest's ELLIPSIS: every `...` in `want` matches any text (also none, also several lines)."""
    pieces = want.split(ELLIPSIS)
    if len(pieces) == 1:
        return want == got
    first, *middle, last = pieces
    if not got.startswith(first) or not got[len(first) :].endswith(last):
        return False
    position, end = len(first), len(got) - len(last)
    for piece in middle:
        found = got.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def diff(expected: str, actual: str, what: str) -> str:
    """A unified diff of expected and actual text, labelled with what they are."""
    lines = difflib.unified_diff(
        expected.rstrip("\n").splitlines(),
        actual.rstrip("\n").splitlines(),
        f"expected {what}",
        f"actual {what}",
        lineterm="",
    )
    return "\n".join(lines) + "\n"


def repl_view(stdout: str, value: str | None) -> str:
    """What a Python console shows for a statement: its output, then the value's repr on its own line."""
    if value is None:
        return stdout
    return stdout + ("" if not stdout or stdout.endswith("\n") else "\n") + value + "\n"


def judge(
    expect: Expectation,
    raised: CellError | None,
    raised_types: Sequence[str],
    actual: dict[str, str | None],
) -> Verdict:
    """The verdict on a cell that ran to its end. `actual` holds its `stdout`, `stderr` and `value`."""
    verdict = judge_error(expect, raised, raised_types)
    if verdict.status is not CellStatus.PASSED:
        return verdict
    shown = {**actual, "repl": repl_view(actual.get("stdout") or "", actual.get("value"))}
    for what, expected in expect.texts().items():
        got = shown.get(what) or ""
        if not text_matches(expected, got):
            where = f" (expected at line {expected.line})" if expected.line else ""
            reason = f"{what} did not match{where}"
            return Verdict(CellStatus.FAILED, reason, diff(expected.text, got, what))
    return verdict


def judge_error(expect: Expectation, raised: CellError | None, raised_types: Sequence[str]) -> Verdict:
    """Whether the cell raised what it should have (or nothing, if nothing was expected)."""
    wanted = "an exception" if expect.error == ANY_EXCEPTION else expect.error
    if raised is None:
        if expect.error is None:
            return Verdict(CellStatus.PASSED)
        return Verdict(CellStatus.FAILED, f"expected {wanted} to be raised, but the cell raised nothing")
    got = f"{raised.type}: {raised.message}" if raised.message else raised.type
    if expect.error is None:
        return Verdict(CellStatus.FAILED, f"raised {got}")
    if not error_matches(expect.error, raised_types or (raised.type,)):
        return Verdict(CellStatus.FAILED, f"expected {wanted}, but the cell raised {got}")
    if expect.error_message and not re.search(expect.error_message, raised.message):
        shown = as_written(expect.error_message)
        return Verdict(CellStatus.FAILED, f"raised {got}, but the message does not match '{shown}'")
    return Verdict(CellStatus.PASSED)


def as_written(pattern: str) -> str:
    """An `error_message` pattern as its author wrote it: readers turn plain text (from a traceback in a
    document) into an escaped regex, `(?s)`-joined at each `...`; shown escaped, it would look like a
    regex the user never wrote. A real regex is shown as it is (not as its repr, which doubles backslashes).
    """
    body, ellipsis = (pattern[4:], True) if pattern.startswith("(?s)") else (pattern, False)
    pieces = body.split(".*") if ellipsis else [body]
    plain = [re.sub(r"\\(.)", r"\1", piece, flags=re.DOTALL) for piece in pieces]
    if [re.escape(piece) for piece in plain] == pieces:
        return ELLIPSIS.join(plain)
    return pattern

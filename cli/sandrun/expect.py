"""Judging a cell: did what it did match what the recipe expected? And the ONE validation of what a recipe
may expect, that every reader calls.

Expected text is compared by `MatchMode`: the recipe's, else its project's default (`default_match`), else
doctest-style `...`; trailing newlines never matter.
A mismatch fails the cell with a unified diff, expected against actual.

Readers (YAML, percent, Markdown, reStructuredText, ...) find expectations in their own syntax, then hand
them, as text with the line where each was written, to `expectation()` (or, for an expected text found
apart from its cell, to `expected_text()`; for a timeout, to `seconds()`). The rules live only here, so they
are the same in every format: an `error` is an exception name; an `error_message` needs an `error` and must
compile as a regular expression; `match` is one of `MATCH_MODES`; under `match: regex` every expected text
must compile; a timeout is more than 0 and at most `MAX_TIMEOUT`. A rule broken is a `RecipeError` at
file:line (exit 2).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sandrun.errors import RecipeError
from sandrun.model import (
    ANY_EXCEPTION,
    MATCH_MODES,
    MAX_TIMEOUT,
    CellError,
    CellStatus,
    Expectation,
    ExpectedText,
    MatchMode,
    is_exception_name,
)

ELLIPSIS = "..."

EXPECT_KEYS = ("error", "error_message", "stdout", "stderr", "value", "repl", "match", "doctest")
"""What a cell may expect, in every recipe format (`repl` comes from `>>>` sessions, not from users;
`doctest` holds doctest flags like `+NORMALIZE_WHITESPACE +NUMBER`, for every expected text)."""
DOCTEST_FLAGS = ("SKIP", "ELLIPSIS", "NORMALIZE_WHITESPACE", "IGNORE_EXCEPTION_DETAIL", "NUMBER")
"""The doctest directives sandrun honours."""
IGNORED_FLAGS = (
    "REPORT_UDIFF", "REPORT_CDIFF", "REPORT_NDIFF", "REPORT_ONLY_FIRST_FAILURE", "FAIL_FAST",
    "DONT_ACCEPT_TRUE_FOR_1",
)  # fmt: skip
"""doctest's directives that change no verdict of sandrun's, accepted and ignored: how a failure is shown
(sandrun always shows a unified diff), stopping at the first failure (sandrun does, unless --keep-going),
and refusing `1` for `True` (sandrun compares reprs, and never accepts it)."""
UNSUPPORTED_FLAGS = {
    "DONT_ACCEPT_BLANKLINE": "doctest's",
    "ALLOW_UNICODE": "pytest's",
    "ALLOW_BYTES": "pytest's",
}
"""Directives of doctest and pytest that change the comparison in a way sandrun does not: an example they
are on for is found but not run (`Cell.unsupported`), never checked by other rules."""


def doctest_flag(word: str, path: str, line: int | None) -> tuple[str, bool]:
    """A `+FLAG` or `-FLAG` word of a doctest directive as (FLAG, on). A word that is no directive of
    doctest's or pytest's (a typo) is a `RecipeError` at `line`, as doctest's own parser refuses it."""
    known = (*DOCTEST_FLAGS, *IGNORED_FLAGS, *UNSUPPORTED_FLAGS)
    found = re.fullmatch(r"([+-])([A-Z_0-9]+)", word)
    if found and found[2] in known:
        return found[2], found[1] == "+"
    name = word.lstrip("+-").upper()
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    hint = f"did you mean '{word[:1] if word[:1] in '+-' else '+'}{close[0]}'? " if close else ""
    hint += f"doctest flags sandrun knows: {', '.join('+' + flag for flag in DOCTEST_FLAGS)}"
    raise RecipeError(path, line, f"{word!r} is not a doctest directive", hint)


def unsupported_flag(flags: Mapping[str, bool]) -> str | None:
    """Why an example with these directives on is not run, if one of them is in `UNSUPPORTED_FLAGS`."""
    for flag, whose in UNSUPPORTED_FLAGS.items():
        if flags.get(flag):
            return f"{whose} doctest directive `+{flag}` changes the comparison in a way sandrun does not"
    return None


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?")
TEXT_KEYS = ("stdout", "stderr", "value", "repl")
_DEFAULT_MATCH: ContextVar[MatchMode] = ContextVar("sandrun_default_match", default=MatchMode.ELLIPSIS)


def default_match() -> MatchMode:
    """The match mode of an expected text whose recipe names none: `ELLIPSIS`, unless a project default is
    in force while the recipe is read (`defaulting_match`)."""
    return _DEFAULT_MATCH.get()


@contextmanager
def defaulting_match(mode: MatchMode | None) -> Iterator[None]:
    """Read recipes with `mode` (None: `ELLIPSIS`) as the match mode of expected texts that name none (a
    project's `[tool.sandrun] match`); in this thread or task only."""
    token = _DEFAULT_MATCH.set(mode or MatchMode.ELLIPSIS)
    try:
        yield
    finally:
        _DEFAULT_MATCH.reset(token)


@dataclass(frozen=True)
class Written:
    """One expectation as a reader found it in the recipe file."""

    text: str
    """The value as written (an exception name, a pattern, expected output, a match mode)."""
    line: int | None = None
    """1-based line where it is written, for errors and messages."""
    span: tuple[int, int] | None = None
    """Character offsets [start, end) of an expected text in the file, for `--update`."""


def expectation(path: str, written: Mapping[str, Written]) -> Expectation:
    """The checked `Expectation` of one cell from what its recipe wrote, by key (see `EXPECT_KEYS`).

    Every reader calls this (or `expected_text` for a text found apart from its cell), so that one rule is
    the same in every format. Raises `RecipeError` at the line of the first broken rule."""
    unknown = [key for key in written if key not in EXPECT_KEYS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, EXPECT_KEYS, n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + f"use one of: {', '.join(EXPECT_KEYS)}"
        raise RecipeError(path, written[key].line, f"unknown expectation {key!r}", hint)
    mode = match_mode(path, written["match"]) if "match" in written else default_match()
    error = written.get("error")
    if error is not None and not is_exception_name(error.text):
        hint = "e.g. ZeroDivisionError, or json.JSONDecodeError"
        raise RecipeError(path, error.line, f"{error.text!r} is not an exception name", hint)
    message = written.get("error_message")
    if message is not None:
        if error is None:
            raise RecipeError(
                path, message.line, "error_message needs an error", "add e.g. error: ValueError"
            )
        _compiles(path, message, "error_message")
    flags: frozenset[str] = frozenset()
    if "doctest" in written:
        line, words = written["doctest"].line, written["doctest"].text.replace(",", " ").split()
        honoured = []
        for word in words:
            flag, on = doctest_flag(word, path, line)
            if not on or flag in UNSUPPORTED_FLAGS:
                hint = f"use: {', '.join('+' + flag for flag in DOCTEST_FLAGS)}"
                raise RecipeError(
                    path, line, f"sandrun cannot honour the doctest directive {word!r} here", hint
                )
            if flag in DOCTEST_FLAGS:
                honoured.append(flag)
        flags = frozenset(honoured)
    texts = {key: expected_text(path, written[key], mode, flags) for key in TEXT_KEYS if key in written}
    return Expectation(
        error=error.text if error else None, error_message=message.text if message else None, **texts
    )


def expected_text(
    path: str, written: Written, mode: MatchMode, doctest: frozenset[str] = frozenset()
) -> ExpectedText:
    """One checked expected text (under `MatchMode.REGEX` it must compile)."""
    if mode is MatchMode.REGEX:
        _compiles(path, written, "the expected output")
    return ExpectedText(written.text, mode, line=written.line, span=written.span, doctest=doctest)


def match_mode(path: str, written: Written) -> MatchMode:
    """A checked match mode name."""
    if written.text not in MATCH_MODES:
        hint = f"use one of: {', '.join(MATCH_MODES)}"
        raise RecipeError(path, written.line, f"unknown match mode {written.text!r}", hint)
    return MatchMode(written.text)


def seconds(path: str, line: int | None, value: float, what: str = "timeout") -> float:
    """A checked timeout: more than 0 and at most `MAX_TIMEOUT` seconds (NaN is refused)."""
    if not 0 < value <= MAX_TIMEOUT:
        message = f"{what} must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {value:g}"
        raise RecipeError(path, line, message)
    return value


def _compiles(path: str, written: Written, what: str) -> None:
    try:
        re.compile(written.text)
    except re.error as exc:
        raise RecipeError(path, written.line, f"{what} is not a valid regular expression: {exc}") from None


@dataclass(frozen=True)
class Verdict:
    """A judged cell: its status, why (unless it passed), and the diff when output did not match."""

    status: CellStatus
    reason: str | None = None
    diff: str | None = None
    mismatch: str | None = None
    """Which expected text did not match (`stdout`, `stderr`, `value` or `repl`), when that is why it
    failed; `reason` says the same in words."""
    mismatch_line: int | None = None
    """The line of the recipe file where the output that did not match is expected, when it is known: the
    expected text's, or that of `#>` comments (see `sandrun.arrows.judge_arrows`)."""


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
    """Whether `actual` satisfies `expected` under its match mode. Trailing newlines never matter, nor (but
    under `regex`) whitespace at the end of a line: editors strip it, and on screen it cannot be seen."""
    want, got = expected.text.rstrip("\n"), actual.rstrip("\n")
    if expected.mode is not MatchMode.REGEX:
        want, got = without_line_end_spaces(want), without_line_end_spaces(got)
    if expected.doctest - {"SKIP", "ELLIPSIS", "IGNORE_EXCEPTION_DETAIL"}:
        return doctest_matches(want, got, expected.doctest, expected.mode is MatchMode.ELLIPSIS)
    if expected.mode is MatchMode.EXACT:
        return want == got
    if expected.mode is MatchMode.REGEX:
        return re.fullmatch(want, got) is not None
    if expected.mode is MatchMode.WHITESPACE:
        return " ".join(want.split()) == " ".join(got.split())
    return ellipsis_matches(want, got)


def doctest_matches(want: str, got: str, flags: frozenset[str], ellipsis: bool) -> bool:
    """The standard library's doctest comparison under `flags`, with pytest's `NUMBER`: a number written
    with a fractional part matches one that rounds to it at that precision."""
    import doctest  # lazily: only documents with doctest directives need it

    if "NUMBER" in flags:
        got = _numbers_as_written(want, got)
    options = doctest.ELLIPSIS if ellipsis or "ELLIPSIS" in flags else 0
    options |= doctest.NORMALIZE_WHITESPACE if "NORMALIZE_WHITESPACE" in flags else 0
    return doctest.OutputChecker().check_output(want + "\n", got + "\n", options)


def _numbers_as_written(want: str, got: str) -> str:
    """`got` with each number that matches the one at the same place in `want` (to `want`'s precision)
    written as in `want`."""
    wanted, pieces, last = list(_NUMBER.finditer(want)), [], 0
    for written, found in zip(wanted, _NUMBER.finditer(got), strict=False):
        decimals = len(written[0].split(".")[1].split("e")[0].split("E")[0]) if "." in written[0] else 0
        if abs(float(written[0]) - float(found[0])) <= 0.5 * 10.0**-decimals:
            pieces += [got[last : found.start()], written[0]]
            last = found.end()
    return "".join(pieces) + got[last:]


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


def without_line_end_spaces(text: str) -> str:
    """`text` without spaces and tabs at the end of its lines."""
    return "\n".join(line.rstrip(" \t") for line in text.split("\n"))


def only_whitespace_differs(expected: str, actual: str) -> bool:
    """Whether the two texts are the same once every run of whitespace counts as one space."""
    return " ".join(expected.split()) == " ".join(actual.split())


def visible_whitespace(text: str) -> str:
    """Spaces as `·` and tabs as `→`, so a diff in whitespace alone can be seen."""
    return text.replace(" ", "\u00b7").replace("\t", "\u2192")


def diff(expected: str, actual: str, what: str) -> str:
    """A unified diff of expected and actual text, labelled with what they are. When they differ only in
    whitespace, it is made visible (`·` a space, `→` a tab)."""
    if only_whitespace_differs(expected, actual):
        expected, actual = visible_whitespace(expected), visible_whitespace(actual)
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
    texts = expect.texts()
    if verdict.status is not CellStatus.PASSED or not texts:
        return verdict
    shown = {**actual, "repl": repl_view(actual.get("stdout") or "", actual.get("value"))}
    for what, expected in texts.items():
        got = shown.get(what) or ""
        if not text_matches(expected, got):
            where = f" (expected at line {expected.line})" if expected.line else ""
            reason = f"{what} did not match{where}"
            if only_whitespace_differs(expected.text, got):
                reason += "; only whitespace differs (shown as · for a space, → for a tab)"
            return Verdict(
                CellStatus.FAILED, reason, diff(expected.text, got, what), what, mismatch_line=expected.line
            )
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

"""`>>>` console sessions, read the way doctest reads them, for every reader that finds them (Markdown's
```` ```pycon ```` blocks, MyST's `{doctest}`, reStructuredText's doctest blocks).

Each `>>> ` line with its `... ` lines is an example; the lines after it, up to a blank line or the next
`>>>`, are what the console must show (printed output, then the repr of a trailing expression; no lines:
nothing). `<BLANKLINE>` stands for an empty line. Expected output that starts with `Traceback (most recent
call last):` means the statement must raise the exception on the traceback's last line, with that message
(`...` in it matches anything). A `#` comment line after a blank line, between examples, is prose.

doctest's directives are honoured, on an example (`>>> f()  # doctest: +SKIP, +ELLIPSIS`) or for a whole
block (the `flags` argument): `+SKIP` (not run), `+ELLIPSIS` (sandrun's default anyway),
`+NORMALIZE_WHITESPACE`, `+IGNORE_EXCEPTION_DETAIL` (only the exception's class name, without its module,
is checked) and pytest's `+NUMBER` (a float matches to the precision it is written with); a `-FLAG` turns a
block's flag off for one example. doctest's flags that change no verdict (`+REPORT_NDIFF`, `+FAIL_FAST`...)
are accepted and ignored; an example that one of doctest's or pytest's other flags is on for
(`+DONT_ACCEPT_BLANKLINE`, `+ALLOW_UNICODE`, `+ALLOW_BYTES`) is found but not run, with the reason; any
other word is an error, as doctest's own parser makes it (`expect.doctest_flag`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sandrun.errors import RecipeError
from sandrun.expect import IGNORED_FLAGS, UNSUPPORTED_FLAGS, Written, doctest_flag, unsupported_flag

PROMPT = re.compile(r"( *)>>>(?: |$)")
_CONTINUATION = re.compile(r"\.\.\.(?: |$)")
_TRACEBACK = re.compile(r"Traceback \((?:most recent call last|innermost last)\):\s*")
_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*)(?::(?: (.*))?)?")
_DIRECTIVE = re.compile(r"#\s*doctest:\s*([^\n'\"]*)$", re.MULTILINE)  # doctest's own


@dataclass(frozen=True)
class Example:
    """One `>>>` statement of a session."""

    source: str
    """The code, prompts removed, every line ended by a newline."""
    index: int
    """0-based index, in the session's lines, of its first `>>>` line."""
    written: dict[str, Written]
    """What it must do (`repl`, or `error` and `error_message`), for `expect.expectation`."""
    skip: bool = False
    """Its `# doctest: +SKIP`."""
    unsupported: str | None = None
    """Why it is not run: a directive on for it that sandrun does not implement (`UNSUPPORTED_FLAGS`)."""


def parse_flags(text: str, path: str, line: int | None) -> dict[str, bool]:
    """`+NORMALIZE_WHITESPACE, -ELLIPSIS` as {flag: on}, without the flags sandrun ignores
    (`IGNORED_FLAGS`); a word that is no doctest directive is a `RecipeError` at `line`."""
    found: dict[str, bool] = {}
    for word in text.replace(",", " ").split():
        flag, on = doctest_flag(word, path, line)
        if flag not in IGNORED_FLAGS:
            found[flag] = on
    return found


def examples(
    lines: Sequence[str], path: str, first: int, starts: Sequence[int], flags: dict[str, bool] | None = None
) -> list[Example]:
    """The examples of the session in `lines` (container prefixes removed), whose first line is the file's
    line with 0-based index `first`; `starts[n]` is the offset where the file's line n starts (for spans)."""
    found: list[Example] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        prompt = PROMPT.match(lines[i])
        if not prompt and lines[i].lstrip().startswith("#"):  # a comment between examples (Sphinx docs)
            i += 1
            continue
        if not prompt:
            hint = "a blank line ends the output: write <BLANKLINE> for an empty line; a prompt is `>>> `"
            message = "this line of a >>> session is neither a prompt nor output"
            raise RecipeError(path, first + i + 1, message, hint)
        indent, start, i = prompt[1], i, i + 1
        while i < len(lines) and lines[i].startswith(indent) and _CONTINUATION.match(lines[i][len(indent) :]):
            i += 1
        source = "".join(line[len(indent) + 4 :] + "\n" for line in lines[start:i])
        output = i
        while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith(">>>"):
            if not lines[i].startswith(indent):
                message = "this output line is indented less than its >>> prompt"
                raise RecipeError(path, first + i + 1, message)
            i += 1
        on = dict(flags or {})
        for directive in _DIRECTIVE.finditer(source):
            on.update(parse_flags(directive[1], path, first + start + 1))
        want = [re.sub(r"^<BLANKLINE>\s*$", "", line[len(indent) :]) for line in lines[output:i]]
        span = (starts[first + output], starts[first + i])
        written = _expectation(path, want, first + output, span, on)
        found.append(Example(source, start, written, on.get("SKIP", False), unsupported_flag(on)))
    return found


def _expectation(
    path: str, want: list[str], line: int, span: tuple[int, int], flags: dict[str, bool]
) -> dict[str, Written]:
    """What a statement must do, from its expected console output (at 0-based line `line`): raise, or show
    `want`."""
    chosen = " ".join(
        f"+{flag}" for flag, on in flags.items() if on and flag != "SKIP" and flag not in UNSUPPORTED_FLAGS
    )
    extra = {"doctest": Written(chosen, line + 1)} if chosen else {}
    if not want or not _TRACEBACK.fullmatch(want[0]):
        return {"repl": Written("".join(w + "\n" for w in want), line + 1, span), **extra}
    header = max(k for k, w in enumerate(want) if _TRACEBACK.fullmatch(w))  # the last of chained tracebacks
    last = next((k for k in range(header + 1, len(want)) if re.match(r"[A-Za-z_]", want[k])), None)
    exception = _EXCEPTION.fullmatch(want[last]) if last is not None else None
    if exception is None or last is None:
        hint = "end it with the exception's name and message, e.g. `ValueError: invalid literal`"
        message = "this traceback does not end with the exception's line"
        raise RecipeError(path, line + header + 1, message, hint)
    if flags.get("IGNORE_EXCEPTION_DETAIL"):
        return {"error": Written(exception[1].rpartition(".")[2], line + last + 1)}
    message = "\n".join([exception[2] or "", *want[last + 1 :]]).rstrip("\n")
    pattern: str | None
    if "..." in message:
        pattern = "(?s)" + ".*".join(re.escape(piece) for piece in message.split("..."))
    else:
        pattern = re.escape(message) if message else None
    written = {"error": Written(exception[1], line + last + 1)}
    if pattern:
        written["error_message"] = Written(pattern, line + last + 1)
    return written

"""Markdown documents: the Python examples of a README or a tutorial, run in order and checked.

Every fenced code block (``` or ~~~, three or more, indented at most three spaces, closed as in CommonMark:
one left open runs to the end of the file) whose info string starts with `python` or `py` is a cell; all run
in one interpreter, in document order. Other languages, indented code blocks, and fences inside other
fences or HTML comments are ignored.

A block tagged `output` or `text` right after a Python block (only blank lines or HTML comments between)
is what that block must print on stdout; `...` in it matches anything, as in doctest:

    ```python
    print(sum(range(5)))
    ```

    ```output
    10
    ```

A `pycon` block, or a `python` block whose first line starts with `>>> `, is a console session, read the way
doctest reads it: each `>>> ` line with its `... ` lines is a cell, and the lines after it, up to a blank line
or the next `>>>`, are what the console must show (printed output, then the repr of a trailing expression;
no lines: nothing). `<BLANKLINE>` stands for an empty line. Expected output that starts with
`Traceback (most recent call last):` means the statement must raise the exception on the traceback's last
line, with that message (`...` in it matches anything).

Options follow the language in the info string, or go in an HTML comment on the lines just before the block
(hidden when the page is rendered): `<!-- sandrun: skip -->`, `<!-- sandrun: name=setup timeout=5 -->`.

    ```python skip                  do not run this block
    ```python name="load data"      a title for reports (quote values with spaces)
    ```python timeout=5             seconds the block may run
    ```python raises=ValueError     it must raise ValueError (`raises` alone: any exception)
    ```python match=exact           how its output is compared: ellipsis (default), exact, regex, whitespace

`match` may also be set on the output block (```` ```output match=exact ````) or in a comment just before
it. A `>>>` session takes every option but `raises`: a traceback says that.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, replace

from sandrun.errors import RecipeError
from sandrun.expect import Written, expectation, expected_text, match_mode, seconds
from sandrun.model import ANY_EXCEPTION, Cell, ExpectedText, MatchMode, Recipe
from sandrun.readers.lines import NEWLINE, split_lines

PYTHON = ("python", "py")
CONSOLE = ("pycon",)
OUTPUT = ("output", "text")
OPTIONS = ("skip", "name", "timeout", "raises", "match")
ALLOWED = {"a Python block": OPTIONS, "a >>> session": (*OPTIONS[:3], "match"), "an output block": ("match",)}

_FENCE = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_COMMENT = re.compile(r" {0,3}<!--\s*sandrun\s*:(.*?)-->\s*")
_HTML_COMMENT = re.compile(r" {0,3}<!--")
_HEADING_START = re.compile(r" {0,3}# +")
_TIMEOUT = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:e[+-]?[0-9]+)?", re.IGNORECASE)
_PROMPT = re.compile(r"( *)>>>(?: |$)")
_CONTINUATION = re.compile(r"\.\.\.(?: |$)")
_TRACEBACK = re.compile(r"Traceback \((?:most recent call last|innermost last)\):\s*")
_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*)(?::(?: (.*))?)?")
_EXAMPLES = 'e.g. ```python skip, ```python name="load data" timeout=5, <!-- sandrun: raises=ValueError -->'


class _Document:
    """The file cut into lines (at CommonMark's line endings), with the offset where each line starts."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = split_lines(text)  # a text that ends with a newline ends with an empty line
        self.starts = [0, *(newline.end() for newline in NEWLINE.finditer(text)), len(text)]

    def fail(self, index: int, message: str, hint: str | None = None) -> RecipeError:
        """A `RecipeError` at the line with 0-based `index`."""
        return RecipeError(self.path, index + 1, message, hint)


@dataclass(frozen=True)
class _Block:
    """A fenced block; `first` and `end` index its first content line and its closing fence (or the end)."""

    lang: str
    info: str
    first: int
    end: int
    indent: int

    def body(self, doc: _Document) -> list[str]:
        """The content lines, with up to the opening fence's indentation removed (as CommonMark does)."""
        lines = doc.lines[self.first : self.end]
        return [line[min(self.indent, len(line) - len(line.lstrip(" "))) :] for line in lines]

    def content(self, doc: _Document) -> str:
        """The content as text, every line ended by `\\n` (but the last if the file ends without one)."""
        ended = [doc.starts[i + 1] > doc.starts[i] + len(doc.lines[i]) for i in range(self.first, self.end)]
        return "".join(line + "\n" * end for line, end in zip(self.body(doc), ended, strict=True))

    def span(self, doc: _Document) -> tuple[int, int]:
        """Offsets of the content in the file: from the line after the opening fence to the closing one."""
        return doc.starts[self.first], doc.starts[self.end]


@dataclass(frozen=True)
class _Settings:
    """The options of a block, from its info string and the comments before it."""

    skip: bool = False
    name: str | None = None
    timeout: float | None = None
    raises: Written | None = None
    match: MatchMode | None = None


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a Markdown document's Python examples. Raises `RecipeError` for bad options or no examples."""
    doc = _Document(text, path)
    cells: list[Cell] = []
    pending: list[tuple[int, str]] = []  # `<!-- sandrun: ... -->` comments waiting for their block
    waiting: _Settings | None = None  # set while an output block may still follow the last cell
    title = None
    for item in _scan(doc):
        if isinstance(item, tuple):
            pending.append(item)
            continue
        if isinstance(item, int):
            _no_orphans(doc, pending)
            title, waiting = title or _heading(doc.lines[item]) or None, None  # a level-1 heading names it
            continue
        options = [*pending, (item.first - 1, item.info)]
        if item.lang in OUTPUT and waiting is not None:
            mode = _settings(doc, options, "an output block").match or waiting.match or MatchMode.ELLIPSIS
            stdout = _expected(doc, item.content(doc), mode, item.first, item.span(doc))
            cells[-1] = replace(cells[-1], expect=replace(cells[-1].expect, stdout=stdout))
            waiting = None
        elif item.lang in PYTHON + CONSOLE:
            first = next((line for line in item.body(doc) if line.strip()), "")
            console = item.lang in CONSOLE or bool(_PROMPT.match(first))
            settings = _settings(doc, options, "a >>> session" if console else "a Python block")
            if console:
                cells += _session(doc, item, settings, len(cells))
            else:
                cells.append(_cell(doc, len(cells), item.first, item.content(doc), settings, {}))
            waiting = None if console else settings
        else:
            _no_orphans(doc, pending)
            waiting = None
        pending = []
    _no_orphans(doc, pending)
    if not cells:
        hint = "fence examples with ```python (```pycon for a >>> session), what they print with ```output"
        raise RecipeError(path, 1, "no Python code blocks in this document", hint)
    return Recipe(path=path, sha256=sha256, format="markdown", cells=tuple(cells), name=title)


def _scan(doc: _Document) -> list[_Block | tuple[int, str] | int]:
    """In order: fenced blocks, sandrun comments (line, options) and other lines with text (their index).
    Blank lines, other HTML comments and what fenced blocks hold are left out."""
    items: list[_Block | tuple[int, str] | int] = []
    i, size = 0, len(doc.lines)
    while i < size:
        line = doc.lines[i]
        fence, comment = _FENCE.fullmatch(line), _COMMENT.fullmatch(line)
        if fence and not (fence[2][0] == "`" and "`" in fence[3]):
            closing = re.compile(rf" {{0,3}}{fence[2][0]}{{{len(fence[2])},}}[ \t]*")
            end = next((j for j in range(i + 1, size) if closing.fullmatch(doc.lines[j])), size)
            lang, _, info = fence[3].strip().replace("\t", " ").partition(" ")
            items.append(_Block(lang.lower(), info, i + 1, end, len(fence[1])))
            i = end
        elif comment:
            items.append((i, comment[1]))
        elif _HTML_COMMENT.match(line):  # an HTML block: no Markdown in it, up to the line with `-->`
            end = next((j for j in range(i, size) if "-->" in doc.lines[j]), size)
            if re.match(r"\s*<!--\s*sandrun\s*:", "\n".join(doc.lines[i : end + 1])):
                raise doc.fail(i, "a `<!-- sandrun: ... -->` comment must be alone on one line")
            i = end
        elif line.strip():
            items.append(i)
        i += 1
    return items


def _heading(line: str) -> str | None:
    """The text of a level-1 ATX heading (`# Title`, `# Title ##`), None if the line is not one. This is
    `re.fullmatch(r" {0,3}# +(.*?)(?: +#+)? *", line)[1]` without a regular expression that backtracks."""
    start = _HEADING_START.match(line)
    if not start:
        return None
    text = line[start.end() :].rstrip(" ")
    before_hashes = text.rstrip("#")
    if len(before_hashes) < len(text) and before_hashes.endswith(" "):  # a closing sequence of #
        return before_hashes.rstrip(" ")
    return text


def _no_orphans(doc: _Document, pending: list[tuple[int, str]]) -> None:
    """Refuse sandrun comments that are not followed by the block they are meant for."""
    if pending:
        message = "this `<!-- sandrun: ... -->` comment is not followed by a Python code block"
        raise doc.fail(pending[0][0], message, "put it just before the ```python block it is about")


def _settings(doc: _Document, sources: list[tuple[int, str]], where: str) -> _Settings:
    """The options in info strings and comments (line index, text), each given at most once."""
    allowed, values = ALLOWED[where], {}
    for index, text in sources:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise doc.fail(index, f"cannot read the options {text.strip()!r}: {exc}", _EXAMPLES) from None
        for key, equals, value in (word.partition("=") for word in words):
            if key not in allowed:
                close = "".join(f"did you mean {c!r}? " for c in difflib.get_close_matches(key, allowed, n=1))
                problem = f"does not apply to {where}" if key in OPTIONS else "is unknown"
                raise doc.fail(
                    index, f"option {key!r} {problem}", f"{close}valid options: {', '.join(allowed)}"
                )
            if key in values:
                raise doc.fail(index, f"option {key!r} is given twice for this block")
            values[key] = _option(doc, index, key, value if equals else None)
    return _Settings(**values)


def _option(doc: _Document, index: int, key: str, value: str | None) -> object:
    """The value of one option, checked."""
    if value is None and key in ("skip", "raises"):
        return True if key == "skip" else Written(ANY_EXCEPTION, index + 1)
    if key == "skip" or not value:
        raise doc.fail(index, f"option {key!r} {'takes no' if key == 'skip' else 'needs a'} value", _EXAMPLES)
    if key == "timeout":
        return seconds(doc.path, index + 1, float(value) if _TIMEOUT.fullmatch(value) else 0.0)
    if key == "raises":
        expectation(doc.path, {"error": Written(value, index + 1)})  # checked where it is written
        return Written(value, index + 1)
    return match_mode(doc.path, Written(value, index + 1)) if key == "match" else value


def _cell(
    doc: _Document, index: int, line: int, source: str, settings: _Settings, written: dict[str, Written]
) -> Cell:
    """A code cell whose source starts on the line with 0-based index `line`."""
    if settings.raises is not None:
        written.setdefault("error", settings.raises)
    if settings.match is not None:
        written.setdefault("match", Written(settings.match.value))
    return Cell(
        index, source, doc.path, line + 1, name=settings.name, timeout=settings.timeout, skip=settings.skip,
        expect=expectation(doc.path, written),
    )  # fmt: skip


def _expected(doc: _Document, text: str, mode: MatchMode, line: int, span: tuple[int, int]) -> ExpectedText:
    """Expected text found at line index `line`, checked (as a regular expression, it must compile)."""
    return expected_text(doc.path, Written(text, line + 1, span), mode)


def _session(doc: _Document, block: _Block, settings: _Settings, index: int) -> list[Cell]:
    """The cells of a `>>>` session, cut as doctest cuts examples: source lines, then expected output."""
    body, cells, i = block.body(doc), [], 0
    while i < len(body):
        if not body[i].strip():
            i += 1
            continue
        prompt = _PROMPT.match(body[i])
        if not prompt:
            hint = "a blank line ends the output: write <BLANKLINE> for an empty line; a prompt is `>>> `"
            raise doc.fail(block.first + i, "this line of a >>> session is neither a prompt nor output", hint)
        indent, start, i = prompt[1], i, i + 1
        while i < len(body) and body[i].startswith(indent) and _CONTINUATION.match(body[i][len(indent) :]):
            i += 1
        source, output = "".join(line[len(indent) + 4 :] + "\n" for line in body[start:i]), i
        while i < len(body) and body[i].strip() and not body[i].lstrip().startswith(">>>"):
            if not body[i].startswith(indent):
                raise doc.fail(block.first + i, "this output line is indented less than its >>> prompt")
            i += 1
        want = [re.sub(r"^<BLANKLINE>\s*$", "", line[len(indent) :]) for line in body[output:i]]
        span = (doc.starts[block.first + output], doc.starts[block.first + i])
        written = _console_expectation(doc, want, block.first + output, span)
        name = settings.name and (f"{settings.name} ({len(cells) + 1})" if cells else settings.name)
        named, line = replace(settings, name=name), block.first + start
        cells.append(_cell(doc, index + len(cells), line, source, named, written))
    return cells


def _console_expectation(
    doc: _Document, want: list[str], line: int, span: tuple[int, int]
) -> dict[str, Written]:
    """What a statement must do, from its expected console output (at line index `line`): raise, or show
    `want`."""
    if not want or not _TRACEBACK.fullmatch(want[0]):
        return {"repl": Written("".join(w + "\n" for w in want), line + 1, span)}
    header = max(k for k, w in enumerate(want) if _TRACEBACK.fullmatch(w))  # the last of chained tracebacks
    last = next((k for k in range(header + 1, len(want)) if re.match(r"[A-Za-z_]", want[k])), None)
    exception = _EXCEPTION.fullmatch(want[last]) if last is not None else None
    if exception is None or last is None:
        hint = "end it with the exception's name and message, e.g. `ValueError: invalid literal`"
        raise doc.fail(line + header, "this traceback does not end with the exception's line", hint)
    message = "\n".join([exception[2] or "", *want[last + 1 :]]).rstrip("\n")
    if "..." in message:
        pattern = "(?s)" + ".*".join(re.escape(piece) for piece in message.split("..."))
    else:
        pattern = re.escape(message) if message else None
    written = {"error": Written(exception[1], line + last + 1)}
    if pattern:
        written["error_message"] = Written(pattern, line + last + 1)
    return written

"""What the document readers (Markdown with MyST, reStructuredText) share: the text cut into lines with
exact offsets, sandrun's block options (`skip`, `name`, `timeout`, `raises`, `match`, `doctest`) read and
checked once, and the cells a code block or a `>>>` session becomes.

A reader finds blocks in its own syntax, hands each one here as a `Fence` (language, first line, content
lines), and gets `Cell`s back: so a rule about options or sessions is the same in every document format.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, replace
from typing import Any

from sandrun.errors import RecipeError
from sandrun.expect import Written, expectation, expected_text, match_mode, seconds
from sandrun.model import ANY_EXCEPTION, Cell, ExpectedText, MatchMode
from sandrun.readers import pycon
from sandrun.readers.lines import NEWLINE, split_lines
from sandrun.readers.md_blocks import Fence

OPTIONS = ("skip", "name", "timeout", "raises", "match", "doctest")
"""sandrun's own block options."""
ALLOWED = {
    "a Python block": OPTIONS[:5],
    "a >>> session": (*OPTIONS[:3], "match", "doctest"),
    "an output block": ("match",),
}
"""Which options each kind of block takes."""
PROMPT = pycon.PROMPT
IPYTHON_PROMPT = re.compile(r"\s*In \[\d*\]: ")
"""The first line of an IPython console session (`In [1]: x = 1`), which is not Python as it stands."""

_TIMEOUT = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:e[+-]?[0-9]+)?", re.IGNORECASE)
_EXAMPLES = 'e.g. ```python skip, ```python name="load data" timeout=5, <!-- sandrun: raises=ValueError -->'


class Document:
    """The file cut into lines (at `\\n`, `\\r\\n` and `\\r`), with the offset where each line starts.

    `comment` is how this format writes a sandrun comment, `{}` standing for its options
    (`<!-- sandrun: {} -->`): skip reasons and hints quote it."""

    def __init__(self, text: str, path: str, comment: str = "<!-- sandrun: {} -->") -> None:
        self.path = path
        self.comment = comment
        self.lines = split_lines(text)  # a text that ends with a newline ends with an empty line
        self.starts = [0, *(newline.end() for newline in NEWLINE.finditer(text)), len(text)]
        self.warnings: list[str] = []

    def warn(self, index: int, message: str) -> None:
        """Note a problem that does not stop the run, at the line with 0-based `index`."""
        self.warnings.append(f"{self.path}:{index + 1}: {message}")

    def content(self, block: Fence) -> str:
        """A block's content, every line ended by `\\n` (but the last if the file ends without one)."""
        text = "".join(line + "\n" for line in block.lines)
        unended = block.end >= len(self.lines) and self.lines[-1] != ""  # the file's last line, no newline
        return text[:-1] if text and unended else text

    def span(self, block: Fence) -> tuple[int, int]:
        """Offsets of a block's content: from its first line to the line after its last."""
        return self.starts[block.first], self.starts[min(block.end, len(self.lines))]

    def fail(self, index: int, message: str, hint: str | None = None) -> RecipeError:
        """A `RecipeError` at the line with 0-based `index`."""
        return RecipeError(self.path, index + 1, message, hint)

    def no_orphans(self, pending: list[tuple[int, str]], block: str, hint: str) -> None:
        """Refuse sandrun comments that are not followed by the `block` they are meant for."""
        if pending:
            message = f"this `{self.comment.format('...')}` comment is not followed by {block}"
            raise self.fail(pending[0][0], message, hint)


@dataclass(frozen=True)
class Settings:
    """The options of a block, from its comments, its info string or its directive's options."""

    skip: bool = False
    skip_reason: str | None = None
    """What says not to run it, as the transcript gives the reason."""
    name: str | None = None
    timeout: float | None = None
    raises: Written | None = None
    match: MatchMode | None = None
    doctest: str | None = None
    """doctest directives for every example of a `>>>` session: `doctest="+NORMALIZE_WHITESPACE +NUMBER"`."""

    def skipped(self, reason: str) -> Settings:
        """These settings with the block skipped for `reason` (a reason already given stays)."""
        return replace(self, skip=True, skip_reason=self.skip_reason or reason)


def block_settings(doc: Document, sources: list[tuple[int, str]], where: str, comments: int) -> Settings:
    """The options in comments and the info string (line index, text), each given at most once. The
    first `comments` sources are sandrun comments, where every word must be an option; in an info string,
    words that are not sandrun's belong to renderers and are ignored."""
    allowed, values, skip_reason = ALLOWED[where], dict[str, Any](), None
    for number, (index, text) in enumerate(sources):
        strict = number < comments
        try:
            words = shlex.split(text)
        except ValueError as exc:
            if strict or any(re.search(rf"(?:^|\s){key}=", text) for key in OPTIONS):
                message = f"cannot read the options {text.strip()!r}: {exc}"
                raise doc.fail(index, message, _EXAMPLES) from None
            continue  # a renderer's options, which sandrun does not read
        for key, equals, value in (word.partition("=") for word in words):
            if key not in allowed:
                close = "".join(f"did you mean {c!r}? " for c in difflib.get_close_matches(key, allowed, n=1))
                if not strict and key not in OPTIONS:
                    if close:
                        doc.warn(index, f"option {key!r} is not sandrun's and is ignored; {close.strip()}")
                    continue
                problem = f"does not apply to {where}" if key in OPTIONS else "is unknown"
                raise doc.fail(
                    index, f"option {key!r} {problem}", f"{close}valid options: {', '.join(allowed)}"
                )
            if key in values:
                raise doc.fail(index, f"option {key!r} is given twice for this block")
            values[key] = _option(doc, index, key, value if equals else None)
            if key == "skip":
                written = doc.comment.format(text.strip()) if strict else "`skip` in its info string"
                skip_reason = f"`{written}` in the document" if strict else written
    return Settings(
        skip=values.get("skip") is True,
        skip_reason=skip_reason,
        name=_text(values.get("name")),
        timeout=timeout if isinstance(timeout := values.get("timeout"), float) else None,
        raises=raises if isinstance(raises := values.get("raises"), Written) else None,
        match=match if isinstance(match := values.get("match"), MatchMode) else None,
        doctest=_text(values.get("doctest")),
    )


def _text(value: object) -> str | None:
    """A checked option's value where the option is text."""
    return value if isinstance(value, str) else None


def _option(doc: Document, index: int, key: str, value: str | None) -> object:
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


def code_cell(
    doc: Document, index: int, line: int, source: str, settings: Settings, written: dict[str, Written]
) -> Cell:
    """A code cell whose source starts on the line with 0-based index `line`."""
    if settings.raises is not None:
        written.setdefault("error", settings.raises)
    if settings.match is not None:
        written.setdefault("match", Written(settings.match.value))
    return Cell(
        index, source, doc.path, line + 1, name=settings.name, timeout=settings.timeout, skip=settings.skip,
        expect=expectation(doc.path, written), skip_reason=settings.skip_reason if settings.skip else None,
    )  # fmt: skip


def expected(doc: Document, text: str, mode: MatchMode, line: int, span: tuple[int, int]) -> ExpectedText:
    """Expected text found at line index `line`, checked (as a regular expression, it must compile)."""
    return expected_text(doc.path, Written(text, line + 1, span), mode)


def session_cells(doc: Document, block: Fence, settings: Settings, index: int) -> list[Cell]:
    """The cells of a `>>>` session (`pycon.examples`), each named after the block's name."""
    flags = pycon.parse_flags(settings.doctest, doc.path, block.opening + 1) if settings.doctest else {}
    cells: list[Cell] = []
    for example in pycon.examples(block.lines, doc.path, block.first, doc.starts, flags):
        name = settings.name and (f"{settings.name} ({len(cells) + 1})" if cells else settings.name)
        named = replace(settings, name=name)
        if example.skip:
            named = named.skipped("doctest's `+SKIP` directive")
        line = block.first + example.index
        cell = code_cell(doc, index + len(cells), line, example.source, named, example.written)
        if example.unsupported:  # found, listed, not run (and fatal under --strict)
            cell = replace(cell, skip=True, skip_reason=None, unsupported=example.unsupported)
        cells.append(cell)
    return cells


def not_run(doc: Document, index: int, block: Fence, reason: str) -> Cell:
    """A block that looks like Python but that sandrun does not run: listed, skipped, with the reason
    (`Cell.unsupported`), so that a `--strict` run fails on it."""
    return Cell(index, doc.content(block), doc.path, block.first + 1, skip=True, unsupported=reason)

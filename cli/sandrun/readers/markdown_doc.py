"""Markdown documents: the Python examples of a README or a tutorial, run in order and checked.

The document is read as CommonMark reads it (`md_blocks`, with markdown-it-py): every fenced code block,
also in a list item, a blockquote or containers nested in them, whose language is `python`, `py`, `python3`,
`py3`, `ipython` or `ipython3` (also Pandoc's `{.python ...}` and Quarto's `{python}`) is a cell; all run
in one interpreter, in document order, each with its true lines in the file. Other languages, indented code
blocks, and fences inside other fences or HTML comments are ignored.

A block tagged `output` or `text` right after a Python block (only blank lines or HTML comments between)
is what that block must print on stdout; `...` in it matches anything, as in doctest:

    ```python
    print(sum(range(5)))
    ```

    ```output
    10
    ```

A `pycon` block, or a `python` block or a block with no language whose first line starts with `>>> `, is a
console session, read the way
doctest reads it: each `>>> ` line with its `... ` lines is a cell, and the lines after it, up to a blank line
or the next `>>>`, are what the console must show (printed output, then the repr of a trailing expression;
no lines: nothing). `<BLANKLINE>` stands for an empty line. Expected output that starts with
`Traceback (most recent call last):` means the statement must raise the exception on the traceback's last
line, with that message (`...` in it matches anything).

Settings that a YAML recipe gives at its top level (`timeout`, `env`, `network`, `files`, `python`,
`packages`, `backend`, `name`, `description`) go in a YAML front matter, under a `sandrun:` key (other
tools' keys are left alone):

    ---
    title: For the site generator
    sandrun:
      packages: [rich]
      timeout: 30
    ---

Options follow the language in the info string, or go in an HTML comment on the lines just before the block
(hidden when the page is rendered): `<!-- sandrun: skip -->`, `<!-- sandrun: name=setup timeout=5 -->`.

    ```python skip                  do not run this block
    ```python name="load data"      a title for reports (quote values with spaces)
    ```python timeout=5             seconds the block may run
    ```python raises=ValueError     it must raise ValueError (`raises` alone: any exception)
    ```python match=exact           how its output is compared: ellipsis (default), exact, regex, whitespace

`match` may also be set on the output block (```` ```output match=exact ````) or in a comment just before
it. A `>>>` session takes every option but `raises`: a traceback says that. Other words in an info string
belong to renderers (`title="main.py"`, `hl_lines="1"`, `linenums="1"`) and are ignored; one that looks like
a misspelt sandrun option gets a warning with "did you mean". In a `<!-- sandrun: -->` comment every word
must be a sandrun option.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, replace
from typing import Any

from sandrun.errors import RecipeError
from sandrun.expect import Written, default_match, expectation, expected_text, match_mode, seconds
from sandrun.model import ANY_EXCEPTION, Cell, ExpectedText, MatchMode, Recipe
from sandrun.readers import md_blocks, myst, pycon
from sandrun.readers.lines import NEWLINE, split_lines
from sandrun.readers.md_blocks import Comment, Fence, Text

PYTHON = ("python", "py", "python3", "py3", "ipython", "ipython3")
CONSOLE = ("pycon",)
OUTPUT = ("output", "text")
_NOT_PYTHON = ("pytb", "pyx", "pyi")  # tracebacks, Cython, stubs: look like Python, are not run as it
_MYST_PYTHON = ("{jupyter-execute}", "{ipython}")
_RST_PYTHON = re.compile(
    r"\s*(?:>>> |\.\. (?:code-block|code|sourcecode)::\s*(?:python|py|pycon)\b"
    r"|\.\. (?:doctest|testcode|testsetup)::)"
)
OPTIONS = ("skip", "name", "timeout", "raises", "match", "doctest")
ALLOWED = {
    "a Python block": OPTIONS[:5],
    "a >>> session": (*OPTIONS[:3], "match", "doctest"),
    "an output block": ("match",),
}

_TIMEOUT = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:e[+-]?[0-9]+)?", re.IGNORECASE)
_PROMPT = pycon.PROMPT
_EXAMPLES = 'e.g. ```python skip, ```python name="load data" timeout=5, <!-- sandrun: raises=ValueError -->'


class _Document:
    """The file cut into lines (at CommonMark's line endings), with the offset where each line starts."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
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
        """Offsets of a block's content: from the line after the opening fence to the closing one."""
        return self.starts[block.first], self.starts[min(block.end, len(self.lines))]

    def fail(self, index: int, message: str, hint: str | None = None) -> RecipeError:
        """A `RecipeError` at the line with 0-based `index`."""
        return RecipeError(self.path, index + 1, message, hint)


@dataclass(frozen=True)
class _Settings:
    """The options of a block, from its info string and the comments before it."""

    skip: bool = False
    name: str | None = None
    timeout: float | None = None
    raises: Written | None = None
    match: MatchMode | None = None
    doctest: str | None = None
    """doctest directives for every example of a `>>>` session: `doctest="+NORMALIZE_WHITESPACE +NUMBER"`."""


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a Markdown document's Python examples. Raises `RecipeError` for bad options or no examples."""
    doc = _Document(text, path)
    cells: list[Cell] = []
    pending: list[tuple[int, str]] = []  # `<!-- sandrun: ... -->` comments waiting for their block
    waiting: _Settings | None = None  # set while an output block may still follow the last cell
    title = None
    recipe_settings, text = _front_matter(doc, text)
    try:
        items = md_blocks.scan(text)
    except md_blocks.BadComment as exc:
        raise doc.fail(exc.args[0], "a `<!-- sandrun: ... -->` comment must be alone on one line") from None
    for item in items:
        if isinstance(item, Comment):
            pending.append((item.line, item.text))
            continue
        if isinstance(item, Text):
            _no_orphans(doc, pending)
            title, waiting = title or item.heading or None, None  # a level-1 heading names it
            continue
        if item.directive:
            item = myst.as_fence(item) or item
        options = [*pending, (item.opening, item.info)]
        first = next((line for line in item.lines if line.strip()), "")
        console = item.lang in CONSOLE or (item.lang in (*PYTHON, "") and bool(_PROMPT.match(first)))
        if item.lang in OUTPUT and waiting is not None:
            where = "an output block"
            mode = _settings(doc, options, where, len(pending)).match or waiting.match or default_match()
            stdout = _expected(doc, doc.content(item), mode, item.first, doc.span(item))
            cells[-1] = replace(cells[-1], expect=replace(cells[-1].expect, stdout=stdout))
            waiting = None
        elif (item.lang in PYTHON or console) and not item.directive:
            where = "a >>> session" if console else "a Python block"
            settings = _settings(doc, options, where, len(pending))
            if console:
                cells += _session(doc, item, settings, len(cells))
            else:
                cells.append(_cell(doc, len(cells), item.first, doc.content(item), settings, {}))
            waiting = None if console else settings
        elif reason := _unsupported(item, first):
            source, line = doc.content(item), item.first + 1
            cells.append(Cell(len(cells), source, path, line, skip=True, unsupported=reason))
            waiting = None
        else:
            _no_orphans(doc, pending)
            waiting = None
        pending = []
    _no_orphans(doc, pending)
    if not cells:
        hint = "fence examples with ```python (```pycon for a >>> session), what they print with ```output"
        raise RecipeError(path, 1, "no Python code blocks in this document", hint)
    recipe_settings["name"] = recipe_settings.get("name") or title
    recipe = Recipe(path=path, sha256=sha256, format="markdown", cells=tuple(cells), **recipe_settings)
    return replace(recipe, warnings=tuple(doc.warnings))


def _front_matter(doc: _Document, text: str) -> tuple[dict[str, Any], str]:
    """The settings under `sandrun:` in a YAML front matter (`---` on the first line to `---` or `...`),
    and the text to read blocks from: the front matter blanked out, so that lines keep their numbers."""
    if not doc.lines or doc.lines[0].rstrip() != "---":
        return {}, text
    close = next((i for i in range(1, len(doc.lines)) if doc.lines[i].rstrip() in ("---", "...")), None)
    if close is None:
        return {}, text
    from sandrun.readers.yaml_recipe import front_matter  # lazily: only documents with front matter

    yaml_text = "\n" + "".join(line + "\n" for line in doc.lines[1:close])
    blanked = "\n" * (close + 1) + text[doc.starts[close + 1] :] if close + 1 < len(doc.starts) else ""
    return front_matter(yaml_text, doc.path), blanked


def _unsupported(block: Fence, first: str) -> str | None:
    """Why a block that looks like Python is not run, or None if it does not look like Python: such blocks
    are listed as skipped (never silently left out), and fail a `--strict` run."""
    argument = block.info.partition(" ")[0].lower()
    if block.lang == "{eval-rst}":  # reStructuredText inside: listed only if it holds Python examples
        python = any(_RST_PYTHON.match(line) for line in block.lines)
        return "reStructuredText examples in ```{eval-rst} are not run by sandrun" if python else None
    if block.directive and (block.lang in _MYST_PYTHON or argument in (*PYTHON, *CONSOLE)):
        return f"the MyST directive ```{block.lang} is not one sandrun runs"
    if not block.directive and block.lang.startswith(("py", "ipy")) and block.lang not in _NOT_PYTHON:
        return f"the language {block.lang!r} is not one sandrun runs (it runs {', '.join(PYTHON + CONSOLE)})"
    if _PROMPT.match(first):
        return f"a >>> session in a {block.lang!r} block (fence it as ```pycon to run it)"
    return None


def _no_orphans(doc: _Document, pending: list[tuple[int, str]]) -> None:
    """Refuse sandrun comments that are not followed by the block they are meant for."""
    if pending:
        message = "this `<!-- sandrun: ... -->` comment is not followed by a Python code block"
        raise doc.fail(pending[0][0], message, "put it just before the ```python block it is about")


def _settings(doc: _Document, sources: list[tuple[int, str]], where: str, comments: int) -> _Settings:
    """The options in comments and the info string (line index, text), each given at most once. The
    first `comments` sources are `<!-- sandrun: -->` comments, where every word must be an option; in the
    info string, words that are not sandrun's belong to renderers and are ignored."""
    allowed, values = ALLOWED[where], dict[str, Any]()
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
    return _Settings(
        skip=values.get("skip") is True,
        name=_text(values.get("name")),
        timeout=timeout if isinstance(timeout := values.get("timeout"), float) else None,
        raises=raises if isinstance(raises := values.get("raises"), Written) else None,
        match=match if isinstance(match := values.get("match"), MatchMode) else None,
        doctest=_text(values.get("doctest")),
    )


def _text(value: object) -> str | None:
    """A checked option's value where the option is text."""
    return value if isinstance(value, str) else None


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


def _session(doc: _Document, block: Fence, settings: _Settings, index: int) -> list[Cell]:
    """The cells of a `>>>` session (`pycon.examples`), each named after the block's name."""
    flags = pycon.parse_flags(settings.doctest, doc.path, block.opening + 1) if settings.doctest else {}
    cells: list[Cell] = []
    for example in pycon.examples(block.lines, doc.path, block.first, doc.starts, flags):
        name = settings.name and (f"{settings.name} ({len(cells) + 1})" if cells else settings.name)
        named = replace(settings, name=name, skip=settings.skip or example.skip)
        line = block.first + example.index
        cells.append(_cell(doc, index + len(cells), line, example.source, named, example.written))
    return cells

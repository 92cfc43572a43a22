"""reStructuredText documents: the Python examples of Sphinx docs, run in order and checked.

Cells, in document order, at any indentation (inside `.. class::`, `.. note::`, list items...):

- `.. code-block:: python` (also `.. code::` and `.. sourcecode::`; languages `python`, `py`, `python3`,
  `py3`, `pycon`): code, or a `>>>` session if its first line starts with `>>> ` or the language is `pycon`;
- a literal block after `::` whose first line starts with `>>> `, and a doctest block (a paragraph that
  starts with `>>> `): `>>>` sessions;
- Sphinx's `sphinx.ext.doctest`: `.. testsetup::`, `.. testcode::` (code), `.. testoutput::` (the expected
  stdout of the `testcode` before it), `.. doctest::` (a session), `.. testcleanup::` (code, run where it
  stands). A `.. doctest::` is checked as Sphinx checks it, with `+IGNORE_EXCEPTION_DETAIL` on (Sphinx's
  default `doctest_default_flags`; `:options: -IGNORE_EXCEPTION_DETAIL` turns it off). Their `:options:`
  `+SKIP` skips the block, `+NORMALIZE_WHITESPACE` compares whitespace loosely;
  a `:skipif:` block is not run (skipped, listed in the transcript).

Presentation options (`:linenos:`, `:caption:`, `:emphasize-lines:`, `:name:`, `:dedent:`...) are ignored.
sandrun's own options go in a comment on the lines before the block, as in Markdown:
`.. sandrun: skip`, `.. sandrun: name=setup timeout=5`, `.. sandrun: raises=ValueError`.
A `>>>` session is read the way doctest reads it (see `markdown_doc`).

Recipe settings (the YAML recipe's top-level keys but `cells`: name, description, timeout, env, network,
python, packages, files, backend) go in YAML indented under one `.. sandrun-settings:` line: with one colon it
is a reST comment, which Sphinx and docutils do not render (`::` would make it an unknown directive there):

    .. sandrun-settings:

       timeout: 30
       packages: [tabulate]
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sandrun.errors import RecipeError
from sandrun.expect import Written
from sandrun.model import Cell, Recipe
from sandrun.readers.markdown_doc import _cell, _Document, _session, _Settings, _settings
from sandrun.readers.md_blocks import Fence

LANGUAGES = ("python", "py", "python3", "py3", "pycon")
CODE_DIRECTIVES = ("code-block", "code", "sourcecode")
DOCTEST_DIRECTIVES = ("testsetup", "testcode", "testoutput", "doctest", "testcleanup")
LITERAL_DIRECTIVES = (
    *CODE_DIRECTIVES,
    "raw",
    "math",
    "parsed-literal",
    "csv-table",
    "graphviz",
    "productionlist",
)
"""Directives whose content is not reST: a `>>>` in it (a `.. code-block:: text`, say) is not an example."""

_DIRECTIVE = re.compile(r"( *)\.\.[ \t]+([\w-]+)[ \t]*::(?:[ \t]+(.*?))?[ \t]*")
_SETTINGS = re.compile(r" *\.\.[ \t]+sandrun-settings[ \t]*::?[ \t]*")
_COMMENT = re.compile(r"( *)\.\.[ \t]+sandrun[ \t]*:(?!:)(.*)")
_EXPLICIT = re.compile(r"( *)\.\.(?:[ \t]|$)")
_FIELD = re.compile(r"[ \t]*:([\w-]+):(?:[ \t]+(.*?))?[ \t]*")
_PROMPT_START = re.compile(r" *>>>(?: |$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _no_orphans(doc: _Document, pending: list[tuple[int, str]]) -> None:
    """Refuse `.. sandrun:` comments that are not followed by the example they are meant for."""
    if pending:
        hint = "put it on the line just before the `.. code-block:: python` (or testcode...) it is about"
        raise doc.fail(pending[0][0], "this `.. sandrun:` comment is not followed by a Python example", hint)


def _fence(doc: _Document, lang: str, opening: int, first: int, end: int) -> Fence:
    """The lines `first` to `end` as a block, without the indentation of its first line."""
    margin = _indent(doc.lines[first])
    lines = tuple(line[min(margin, _indent(line)) :] for line in doc.lines[first:end])
    return Fence(lang, "", opening, first, end, lines)


def _indented_block(doc: _Document, start: int, than: int) -> tuple[int, int]:
    """The lines from `start` indented more than `than` (blank lines within): (first nonblank, end)."""
    end, j, first = start, start, None
    while j < len(doc.lines):
        line = doc.lines[j]
        if line.strip():
            if _indent(line) <= than:
                break
            first = j if first is None else first
            end = j + 1
        j += 1
    return (first if first is not None else start), end


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a reST document's Python examples. Raises `RecipeError` for bad options or no examples."""
    doc = _Document(text, path)
    cells: list[Cell] = []
    pending: list[tuple[int, str]] = []
    recipe_settings: dict[str, Any] | None = None  # from `.. sandrun-settings:`
    last_testcode: tuple[int, _Settings] | None = None  # the testcode a testoutput belongs to: index, options
    i, size, previous_blank = 0, len(doc.lines), True
    while i < size:
        line = doc.lines[i]
        comment, directive = _COMMENT.fullmatch(line), _DIRECTIVE.fullmatch(line)
        if comment:
            pending.append((i, comment[2]))
            i, previous_blank = i + 1, False
            continue
        if _SETTINGS.fullmatch(line):
            if recipe_settings is not None or pending:
                again = recipe_settings is not None
                problem = "a second `.. sandrun-settings:`" if again else "a `.. sandrun:` comment before it"
                raise doc.fail(i if again else pending[0][0], f"{problem}: give the settings once")
            i, recipe_settings = _read_settings(doc, i, _indent(line))
            previous_blank = True
            continue
        if directive:
            i, last_testcode = _directive(doc, directive, i, pending, cells, last_testcode)
            pending, previous_blank = [], True
            continue
        if previous_blank and _PROMPT_START.match(line):  # a doctest block: the paragraph
            end = next((j for j in range(i, size) if not doc.lines[j].strip()), size)
            settings = _settings(doc, pending, "a >>> session", len(pending))
            cells += _session(doc, _fence(doc, "pycon", i, i, end), settings, len(cells))
            pending, i, previous_blank = [], end, True
            continue
        explicit = _EXPLICIT.match(line)
        if explicit:  # a comment, target or substitution: what is indented under it is not an example
            if pending:
                raise doc.fail(
                    pending[0][0], "this `.. sandrun:` comment is not followed by a Python example"
                )
            i, pending, previous_blank = (
                max(_indented_block(doc, i + 1, len(explicit[1]))[1], i + 1),
                [],
                True,
            )
            continue
        if line.rstrip().endswith("::"):
            first, end = _indented_block(doc, i + 1, _indent(line))
            if end > i + 1 and _PROMPT_START.match(doc.lines[first]):
                settings = _settings(doc, pending, "a >>> session", len(pending))
                block = _fence(doc, "pycon", i, first, end)
                cells += _session(doc, block, settings, len(cells))
                pending, i, previous_blank = [], end, True
                continue
            i = max(end, i + 1)  # a literal block of something else: nothing in it is markup
            pending, previous_blank = [], True
            continue
        if line.strip():
            _no_orphans(doc, pending)
        previous_blank = not line.strip()
        i += 1
    _no_orphans(doc, pending)
    if not cells:
        hint = "write examples as `.. code-block:: python`, `.. testcode::` or `>>>` sessions"
        raise RecipeError(path, 1, "no Python examples in this document", hint)
    return Recipe(path=path, sha256=sha256, format="rst", cells=tuple(cells), **(recipe_settings or {}))


def _read_settings(doc: _Document, i: int, indent: int) -> tuple[int, dict[str, Any]]:
    """The YAML under a `.. sandrun-settings:` comment at line `i`, checked as a YAML recipe's top level."""
    from sandrun.readers.yaml_recipe import read_settings

    first, end = _indented_block(doc, i + 1, indent)
    if end <= first:
        raise doc.fail(i, "this `.. sandrun-settings:` is empty", "indent YAML under it, e.g. `timeout: 30`")
    margin = _indent(doc.lines[first])
    body = [line[margin:] if line[:margin].isspace() else line.lstrip(" ") for line in doc.lines[first:end]]
    return end, read_settings("\n" * first + "\n".join(body) + "\n", doc.path)


def _directive(
    doc: _Document,
    match: re.Match[str],
    i: int,
    pending: list[tuple[int, str]],
    cells: list[Cell],
    last_testcode: tuple[int, _Settings] | None,
) -> tuple[int, tuple[int, _Settings] | None]:
    """Read the directive at line `i`; return the line after it and the testcode awaiting its output."""
    indent, name, argument = len(match[1]), match[2].lower(), (match[3] or "").strip().lower()
    j, fields = i + 1, {}
    while j < len(doc.lines) and _FIELD.fullmatch(doc.lines[j]) and _indent(doc.lines[j]) > indent:
        field = _FIELD.fullmatch(doc.lines[j])
        assert field is not None
        fields[field[1].lower()] = field[2] or ""
        j += 1
    is_code = name in CODE_DIRECTIVES and argument in LANGUAGES
    if not (is_code or name in DOCTEST_DIRECTIVES):
        _no_orphans(doc, pending)
        if name in LITERAL_DIRECTIVES:
            return max(_indented_block(doc, j, indent)[1], j), last_testcode
        return j, last_testcode  # other directives (note, class...): their content is scanned like the rest
    first, end = _indented_block(doc, j, indent)
    if end <= first:
        return max(end, i + 1), last_testcode
    block = _fence(doc, argument or name, i, first, end)
    options = " ".join(fields.get("options", "").replace(",", " ").split())
    if name == "testoutput":
        if last_testcode is None:
            raise doc.fail(i, "a `.. testoutput::` must follow a `.. testcode::`")
        index, settings = last_testcode
        cell, flags = cells[index], options.replace("+SKIP", "").strip()
        written = {"stdout": Written(doc.content(block), first + 1, doc.span(block))}
        if flags:
            written["doctest"] = Written(flags, i + 2)
        cells[index] = _cell(doc, index, cell.line - 1, cell.source, settings, written)
        return end, None
    session = name == "doctest" or argument == "pycon" or bool(_PROMPT_START.match(doc.lines[first]))
    settings = _settings(doc, pending, "a >>> session" if session else "a Python block", len(pending))
    skip = settings.skip or "+SKIP" in options.split() or "skipif" in fields
    if name == "doctest":  # Sphinx checks these with its doctest_default_flags (ELLIPSIS is ours anyway)
        options = " ".join(["+IGNORE_EXCEPTION_DETAIL", options]).strip()
    settings = replace(settings, skip=skip, doctest=settings.doctest or options or None)
    if session:
        cells += _session(doc, block, settings, len(cells))
        return end, None
    cells.append(_cell(doc, len(cells), first, doc.content(block), replace(settings, doctest=None), {}))
    return end, (len(cells) - 1, settings) if name == "testcode" else None

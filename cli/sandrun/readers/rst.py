"""reStructuredText documents: the Python examples of Sphinx docs, run in order and checked.

Cells, in document order, at any indentation (inside `.. class::`, `.. note::`, list items...):

- `.. code-block:: python` (also `.. code::` and `.. sourcecode::`; languages `python`, `py`, `python3`,
  `py3`, `ipython`, `ipython3`, `pycon`, or none): code, or a `>>>` session if its first line starts with
  `>>> ` or the language is `pycon` (with no language, only a session is run);
- a literal block after `::` whose first line starts with `>>> `, and a doctest block (a paragraph that
  starts with `>>> `): `>>>` sessions;
- Sphinx's `sphinx.ext.doctest`: `.. testsetup::`, `.. testcode::` (code), `.. testoutput::` (the expected
  stdout of the `testcode` before it), `.. doctest::` (a session), `.. testcleanup::` (code, run where it
  stands). A `.. doctest::` is checked as Sphinx checks it, with `+IGNORE_EXCEPTION_DETAIL` on (Sphinx's
  default `doctest_default_flags`; `:options: -IGNORE_EXCEPTION_DETAIL` turns it off). Their `:options:`
  `+SKIP` skips the block, `+NORMALIZE_WHITESPACE` compares whitespace loosely.
  `:skipif:` is Python from the document: it is evaluated inside the sandbox, in the document's
  interpreter, just before the block (not in a namespace of its own as Sphinx does), and the block is
  skipped, with the expression as the reason, when it is true. `:pyversion: > 3.10` skips the block where
  the sandbox's Python does not satisfy it (see `pyversion`). A `.. testoutput::`'s `:skipif:`,
  `:pyversion:` or `+SKIP` applies to its `testcode` too: sandrun runs and checks the pair as one cell.

Sphinx's `doctest_global_setup` and `doctest_global_cleanup`, from the nearest `conf.py` (see
`sphinx_conf`: it is parsed, never run on the host, and only plain string literals are taken), run in the
sandbox as the document's first and last cells, named after them and placed at their lines in conf.py.

Blocks that look like Python but are not run are listed as skipped with the reason (and fail a `--strict`
run), never left out in silence: another `py...` language (`pycon3`, `python-repl`), a `>>>` session in a
block of another language, an IPython console session (`In [1]:`), the `.. ipython::`,
`.. jupyter-execute::` and `.. plot::` directives.

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

import copy
import re
from dataclasses import dataclass, field, replace
from typing import Any

from sandrun.errors import RecipeError
from sandrun.expect import UNSUPPORTED_FLAGS, Written, unsupported_flag
from sandrun.model import Cell, Condition, Recipe
from sandrun.readers import Format
from sandrun.readers.doc_cells import (
    IPYTHON_PROMPT,
    Document,
    Settings,
    block_settings,
    code_cell,
    not_run,
    session_cells,
)
from sandrun.readers.doc_rewrite import rewrite_rst
from sandrun.readers.md_blocks import Fence
from sandrun.readers.pycon import parse_flags
from sandrun.readers.pyversion import skip_condition
from sandrun.readers.sphinx_conf import with_global_code

LANGUAGES = ("python", "py", "python3", "py3", "ipython", "ipython3", "pycon")
CODE_DIRECTIVES = ("code-block", "code", "sourcecode")
DOCTEST_DIRECTIVES = ("testsetup", "testcode", "testoutput", "doctest", "testcleanup")
NOT_RUN_DIRECTIVES = ("ipython", "jupyter-execute", "plot")
"""Directives that hold Python sandrun does not run (IPython's, jupyter-sphinx's, matplotlib's): listed."""
LITERAL_DIRECTIVES = (
    *CODE_DIRECTIVES,
    *NOT_RUN_DIRECTIVES,
    "raw",
    "math",
    "parsed-literal",
    "csv-table",
    "graphviz",
    "productionlist",
)
"""Directives whose content is not reST: a `>>>` in it (a `.. code-block:: text`, say) is not an example."""
COMMENT = ".. sandrun: {}"
_NOT_PYTHON = ("pytb", "pyx", "pyi")  # tracebacks, Cython, stubs: look like Python, are not run as it

_DIRECTIVE = re.compile(r"( *)\.\.[ \t]+([\w-]+)[ \t]*::(?:[ \t]+(.*?))?[ \t]*")
_SETTINGS = re.compile(r" *\.\.[ \t]+sandrun-settings[ \t]*::?[ \t]*")
_COMMENT = re.compile(r"( *)\.\.[ \t]+sandrun[ \t]*:(?!:)(.*)")
_EXPLICIT = re.compile(r"( *)\.\.(?:[ \t]|$)")
_FIELD = re.compile(r"[ \t]*:([\w-]+):(?:[ \t]+(.*?))?[ \t]*")
_PROMPT_START = re.compile(r" *>>>(?: |$)")
_HINT = "put it on the line just before the `.. code-block:: python` (or testcode...) it is about"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a reST document's Python examples. Raises `RecipeError` for bad options or no examples."""
    doc = Document(text, path, COMMENT)
    scan = _Scan(doc, 0, len(doc.lines), 0)
    scan.run()
    if not scan.cells:
        hint = "write examples as `.. code-block:: python`, `.. testcode::` or `>>>` sessions"
        raise RecipeError(path, 1, "no Python examples in this document", hint)
    cells, warnings = with_global_code(scan.cells, path)
    recipe = Recipe(path=path, sha256=sha256, format="rst", cells=tuple(cells), **(scan.settings or {}))
    return replace(recipe, warnings=(*warnings, *doc.warnings))


FORMAT = Format(parse, rewrite=rewrite_rst)
"""reStructuredText documents: expected texts are `.. testoutput::` bodies and `>>>` session output."""


def cells_in(doc: Document, first: int, end: int, index: int) -> list[Cell]:
    """The examples of the reST in lines `first` to `end` of another document (a MyST ```` ```{eval-rst}
    ````), at their lines in that file, numbered from `index`."""
    view = copy.copy(doc)  # the same lines, offsets and warnings
    view.comment = COMMENT
    scan = _Scan(view, first, end, index)
    scan.run()
    if scan.settings is not None:
        raise doc.fail(scan.settings_line, "settings go in the document's front matter, under `sandrun:`")
    return scan.cells


@dataclass
class _Scan:
    """Reading lines `start` to `stop` of a document: the cells found so far and what awaits a block."""

    doc: Document
    start: int
    stop: int
    index: int
    cells: list[Cell] = field(default_factory=list)
    pending: list[tuple[int, str]] = field(default_factory=list)
    """`.. sandrun:` comments waiting for their block."""
    settings: dict[str, Any] | None = None
    """From `.. sandrun-settings:`."""
    settings_line: int = 0
    testcode: tuple[int, Settings] | None = None
    """The testcode a testoutput belongs to: its place in `cells`, its options."""

    def run(self) -> None:
        """Read every line, in order."""
        doc, i, previous_blank = self.doc, self.start, True
        while i < self.stop:
            line = doc.lines[i]
            comment, directive = _COMMENT.fullmatch(line), _DIRECTIVE.fullmatch(line)
            if comment:
                self.pending.append((i, comment[2]))
                i, previous_blank = i + 1, False
                continue
            if _SETTINGS.fullmatch(line):
                if self.settings is not None or self.pending:
                    again = self.settings is not None
                    problem = (
                        "a second `.. sandrun-settings:`" if again else "a `.. sandrun:` comment before it"
                    )
                    raise doc.fail(i if again else self.pending[0][0], f"{problem}: give the settings once")
                self.settings_line = i
                i, self.settings = self._read_settings(i, _indent(line))
                previous_blank = True
                continue
            if directive:
                i = self._directive(directive, i)
                self.pending, previous_blank = [], True
                continue
            if previous_blank and _PROMPT_START.match(line):  # a doctest block: the paragraph
                end = next((j for j in range(i, self.stop) if not doc.lines[j].strip()), self.stop)
                self._session(self._fence("pycon", i, i, end), "")
                i, previous_blank = end, True
                continue
            explicit = _EXPLICIT.match(line)
            if explicit:  # a comment, target or substitution: what is indented under it is not an example
                doc.no_orphans(self.pending, "a Python example", _HINT)
                i, previous_blank = max(self._indented(i + 1, len(explicit[1]))[1], i + 1), True
                continue
            if line.rstrip().endswith("::"):
                first, end = self._indented(i + 1, _indent(line))
                if end > i + 1 and _PROMPT_START.match(doc.lines[first]):
                    self._session(self._fence("pycon", i, first, end), "")
                    i, previous_blank = end, True
                    continue
                i = max(end, i + 1)  # a literal block of something else: nothing in it is markup
                self.pending, previous_blank = [], True
                continue
            if line.strip():
                doc.no_orphans(self.pending, "a Python example", _HINT)
            previous_blank = not line.strip()
            i += 1
        doc.no_orphans(self.pending, "a Python example", _HINT)

    def _fence(self, lang: str, opening: int, first: int, end: int) -> Fence:
        """The lines `first` to `end` as a block, without the indentation of its first line."""
        margin = _indent(self.doc.lines[first])
        lines = tuple(line[min(margin, _indent(line)) :] for line in self.doc.lines[first:end])
        return Fence(lang, "", opening, first, end, lines)

    def _indented(self, start: int, than: int) -> tuple[int, int]:
        """The lines from `start` indented more than `than` (blank lines within): (first nonblank, end)."""
        end, j, first = start, start, None
        while j < self.stop:
            line = self.doc.lines[j]
            if line.strip():
                if _indent(line) <= than:
                    break
                first = j if first is None else first
                end = j + 1
            j += 1
        return (first if first is not None else start), end

    def _read_settings(self, i: int, indent: int) -> tuple[int, dict[str, Any]]:
        """The YAML under a `.. sandrun-settings:` comment at line `i`, checked as a YAML recipe's top
        level."""
        from sandrun.readers.yaml_recipe import read_settings

        doc = self.doc
        first, end = self._indented(i + 1, indent)
        if end <= first:
            raise doc.fail(
                i, "this `.. sandrun-settings:` is empty", "indent YAML under it, e.g. `timeout: 30`"
            )
        margin = _indent(doc.lines[first])
        body = [
            line[margin:] if line[:margin].isspace() else line.lstrip(" ") for line in doc.lines[first:end]
        ]
        return end, read_settings("\n" * first + "\n".join(body) + "\n", doc.path)

    def _settings(self, where: str) -> Settings:
        """The options of the `.. sandrun:` comments before the block."""
        return block_settings(self.doc, self.pending, where, len(self.pending))

    def _session(self, block: Fence, skip: str, condition: Condition | None = None, flags: str = "") -> None:
        """The cells of a `>>>` session; `skip` says why its directive skips it, if it does."""
        settings = self._settings("a >>> session")
        settings = replace(settings, doctest=settings.doctest or flags or None)
        if skip:
            settings = settings.skipped(skip)
        found = session_cells(self.doc, block, settings, self.index + len(self.cells))
        self.cells += [replace(cell, skip_if=condition) for cell in found]
        self.pending, self.testcode = [], None

    def _not_run(self, block: Fence, reason: str) -> None:
        self.cells.append(not_run(self.doc, self.index + len(self.cells), block, reason))
        self.pending, self.testcode = [], None

    def _directive(self, match: re.Match[str], i: int) -> int:
        """Read the directive at line `i`; return the line after it."""
        doc = self.doc
        indent, name, argument = len(match[1]), match[2].lower(), (match[3] or "").strip().lower()
        j, fields = i + 1, dict[str, tuple[int, str]]()
        while j < self.stop and _FIELD.fullmatch(doc.lines[j]) and _indent(doc.lines[j]) > indent:
            found = _FIELD.fullmatch(doc.lines[j])
            assert found is not None
            fields[found[1].lower()] = (j, found[2] or "")
            j += 1
        known = name in CODE_DIRECTIVES or name in DOCTEST_DIRECTIVES or name in NOT_RUN_DIRECTIVES
        first, end = self._indented(j, indent)
        if not known or end <= first:
            doc.no_orphans(self.pending, "a Python example", _HINT)
            if name in LITERAL_DIRECTIVES:
                return max(end, j)
            return j  # other directives (note, class...): their content is scanned like the rest
        block = self._fence(argument or name, i, first, end)
        text = doc.lines[first]
        session = name == "doctest" or argument == "pycon" or bool(_PROMPT_START.match(text))
        if name in CODE_DIRECTIVES and (reason := _not_python(argument, text, session)):
            if reason != "-":
                self._not_run(block, reason)
            else:
                doc.no_orphans(self.pending, "a Python example", _HINT)
            return end
        if name in NOT_RUN_DIRECTIVES:
            if name != "plot" or not argument:  # `.. plot:: script.py` holds options, not code
                self._not_run(block, f"the directive `.. {name}::` is not one sandrun runs")
            return end
        options = " ".join(fields.get("options", (0, ""))[1].replace(",", " ").split())
        skip = f"`:options: +SKIP` of its `.. {name}::`" if "+SKIP" in options.split() else ""
        condition = Condition(fields["skipif"][1], fields["skipif"][0] + 1) if "skipif" in fields else None
        if "pyversion" in fields:
            at, spec = fields["pyversion"]
            condition = either(condition, skip_condition(spec, doc.path, at + 1))
        if name == "doctest":  # Sphinx checks these with its doctest_default_flags (ELLIPSIS is ours anyway)
            options = " ".join(["+IGNORE_EXCEPTION_DETAIL", options]).strip()
        if name == "testoutput":
            return self._testoutput(i, block, options, skip, condition)
        if session:
            self._session(block, skip, condition, options)
            return end
        settings = self._settings("a Python block")
        settings = settings.skipped(skip) if skip else settings
        cell = code_cell(doc, self.index + len(self.cells), first, doc.content(block), settings, {})
        self.cells.append(replace(cell, skip_if=condition))
        self.pending = []
        self.testcode = (len(self.cells) - 1, settings) if name == "testcode" else None
        return end

    def _testoutput(self, i: int, block: Fence, options: str, skip: str, condition: Condition | None) -> int:
        """A `.. testoutput::`: the expected stdout of the testcode before it, its options applied to it."""
        doc = self.doc
        if self.testcode is None:
            raise doc.fail(i, "a `.. testoutput::` must follow a `.. testcode::`")
        place, settings = self.testcode
        cell, flags = self.cells[place], options.replace("+SKIP", "").strip()
        unsupported = unsupported_flag(parse_flags(flags, doc.path, i + 2))
        flags = " ".join(word for word in flags.split() if word.lstrip("+-") not in UNSUPPORTED_FLAGS)
        written = {"stdout": Written(doc.content(block), block.first + 1, doc.span(block))}
        if flags:
            written["doctest"] = Written(flags, i + 2)
        settings = settings.skipped(skip) if skip else settings
        new = code_cell(doc, cell.index, cell.line - 1, cell.source, settings, written)
        if unsupported:  # the pair is one cell: found, listed, not run
            new = replace(new, skip=True, skip_reason=None, unsupported=unsupported)
        if condition is not None and cell.skip_if is not None and cell.skip_if.text != condition.text:
            option = "`:skipif:`" if condition.described is None else "`:pyversion:`"
            doc.warn(
                condition.line - 1,
                f"this {option} skips the testcode too (sandrun runs the pair as one cell)",
            )
            condition = either(cell.skip_if, condition)
        elif cell.skip_if is not None:
            condition = cell.skip_if  # the testcode's own, or the same expression again
        self.cells[place] = replace(new, skip_if=condition)
        self.testcode = None
        return block.end


def either(first: Condition | None, second: Condition) -> Condition:
    """A condition true when either is (at `first`'s line, where its expression is compiled)."""
    if first is None:
        return second
    described = f"{first.why}, or {second.why}" if first.described or second.described else None
    return Condition(f"({first.text}) or ({second.text})", first.line, described)


def _not_python(language: str, first: str, session: bool) -> str | None:
    """For a code block in `language` whose first line is `first`: why it is not run if it looks like
    Python, `-` if it does not look like Python, None if it is run."""
    if language in LANGUAGES:
        if language.startswith("ipython") and IPYTHON_PROMPT.match(first):
            return (
                "an IPython console session (`In [1]:` prompts) is not run by sandrun; write it as >>> lines"
            )
        return None
    if not language and session:
        return None
    if language.startswith(("py", "ipy")) and language not in _NOT_PYTHON:
        return f"the language {language!r} is not one sandrun runs (it runs {', '.join(LANGUAGES)})"
    if session:
        return (
            f"a >>> session in a {language or 'code'!r} block (write it as `.. code-block:: pycon` to run it)"
        )
    return "-"

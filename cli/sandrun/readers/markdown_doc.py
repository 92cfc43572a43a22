"""Markdown documents: the Python examples of a README or a tutorial, run in order and checked.

The document is read as CommonMark reads it (`md_blocks`, with markdown-it-py): every fenced code block,
also in a list item, a blockquote or containers nested in them, whose language is `python`, `py`, `python3`,
`py3`, `ipython` or `ipython3` (also Pandoc's `{.python ...}` and Quarto's `{python}`) is a cell; all run
in one interpreter, in document order, each with its true lines in the file. Other languages, indented code
blocks, and fences inside other fences or HTML comments are ignored. MyST directives are read by `myst`;
the reStructuredText in an ```` ```{eval-rst} ```` block is read by `rst`, at this file's lines. A page
with one of Sphinx's doctest directives (`{doctest}`, `{testcode}`...) or an `{eval-rst}` gets the
`doctest_global_setup` and cleanup of its conf.py, as a reST document does (`sphinx_conf`). A block
that looks like Python but is not run (another `py...` language, an IPython `In [1]:` session, a `>>>`
session in a `text` block) is a skipped cell that says why, so that nothing is left out in silence.

A block tagged `output` or `text` right after a Python block (only blank lines or HTML comments between)
is what that block must print on stdout; `...` in it matches anything, as in doctest:

    ```python
    print(sum(range(5)))
    ```

    ```output
    10
    ```

A `pycon` block, or a `python` block or a block with no language (also an indented code block) whose first
line starts with `>>> `, is a console session, read the way
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

import re
from dataclasses import replace
from typing import Any

from sandrun.errors import RecipeError
from sandrun.expect import default_match
from sandrun.model import Cell, Recipe
from sandrun.readers import Format, md_blocks, myst
from sandrun.readers.doc_cells import (
    IPYTHON_PROMPT,
    PROMPT,
    Document,
    Settings,
    block_settings,
    code_cell,
    expected,
    not_run,
    session_cells,
)
from sandrun.readers.doc_rewrite import rewrite_markdown
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
_EVAL_RST = "{eval-rst}"
SPHINX_DOCTEST = ("{doctest}", "{testsetup}", "{testcode}", "{testcleanup}", "{testoutput}", _EVAL_RST)
"""MyST directives of Sphinx's doctest builder (and reST in MyST): a document with one is a Sphinx page, whose
examples get the doctest global setup of its conf.py."""
_HINT = "put it just before the ```python block it is about"


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a Markdown document's Python examples. Raises `RecipeError` for bad options or no examples."""
    doc = Document(text, path)
    cells: list[Cell] = []
    pending: list[tuple[int, str]] = []  # `<!-- sandrun: ... -->` comments waiting for their block
    waiting: Settings | None = None  # set while an output block may still follow the last cell
    title = None
    recipe_settings, text = _front_matter(doc, text)
    try:
        items = md_blocks.scan(text)
    except md_blocks.BadComment as exc:
        raise doc.fail(exc.args[0], "a `<!-- sandrun: ... -->` comment must be alone on one line") from None
    sphinx = any(isinstance(item, Fence) and item.directive and item.lang in SPHINX_DOCTEST for item in items)
    for item in items:
        if isinstance(item, Comment):
            pending.append((item.line, item.text))
            continue
        if isinstance(item, Text):
            doc.no_orphans(pending, "a Python code block", _HINT)
            title, waiting = title or item.heading or None, None  # a level-1 heading names it
            continue
        tagged = item.lang == "{code-cell}"  # its `skip` comes from a `skip-execution` tag
        if item.directive:
            item = myst.as_fence(item) or item
        options = [*pending, (item.opening, item.info)]
        first = next((line for line in item.lines if line.strip()), "")
        console = item.lang in CONSOLE or (item.lang in (*PYTHON, "") and bool(PROMPT.match(first)))
        if item.lang in OUTPUT and waiting is not None:
            where = "an output block"
            mode = block_settings(doc, options, where, len(pending)).match or waiting.match or default_match()
            stdout = expected(doc, doc.content(item), mode, item.first, doc.span(item))
            cells[-1] = replace(cells[-1], expect=replace(cells[-1].expect, stdout=stdout))
            waiting = None
        elif (item.lang in PYTHON or console) and not item.directive and not IPYTHON_PROMPT.match(first):
            where = "a >>> session" if console else "a Python block"
            settings = block_settings(doc, options, where, len(pending))
            if tagged and settings.skip:
                settings = replace(settings, skip_reason="the `skip-execution` tag of its {code-cell}")
            if console and item.indented:  # doctest's reading: not a session after all is not an error
                try:
                    cells += session_cells(doc, item, settings, len(cells))
                except RecipeError as exc:
                    why = f"an indented block that starts with >>> but is not a session: {exc.message}"
                    cells.append(not_run(doc, len(cells), item, why))
            elif console:
                cells += session_cells(doc, item, settings, len(cells))
            else:
                cells.append(code_cell(doc, len(cells), item.first, doc.content(item), settings, {}))
            waiting = None if console else settings
        elif item.lang == _EVAL_RST and item.directive:
            doc.no_orphans(pending, "a Python code block", "a `.. sandrun:` comment inside the block does it")
            cells += _eval_rst(doc, item, len(cells))
            waiting = None
        elif reason := _unsupported(item, first):
            cells.append(not_run(doc, len(cells), item, reason))
            waiting = None
        else:
            doc.no_orphans(pending, "a Python code block", _HINT)
            waiting = None
        pending = []
    doc.no_orphans(pending, "a Python code block", _HINT)
    if not cells:
        hint = "fence examples with ```python (```pycon for a >>> session), what they print with ```output"
        raise RecipeError(path, 1, "no Python code blocks in this document", hint)
    recipe_settings["name"] = recipe_settings.get("name") or title
    warnings: tuple[str, ...] = ()
    if sphinx:
        from sandrun.readers.sphinx_conf import with_global_code  # only Sphinx pages look for conf.py

        cells, warnings = with_global_code(cells, path)
    recipe = Recipe(path=path, sha256=sha256, format="markdown", cells=tuple(cells), **recipe_settings)
    return replace(recipe, warnings=(*warnings, *doc.warnings))


FORMAT = Format(parse, rewrite=rewrite_markdown)
"""Markdown documents (MyST too): expected texts are output blocks and `>>>` session output."""


def _eval_rst(doc: Document, block: Fence, index: int) -> list[Cell]:
    """The examples of a MyST ```` ```{eval-rst} ```` block, read by the reStructuredText reader at their
    lines in this file. Inside a blockquote the lines carry `>` prefixes that reST cannot read: such a
    block is listed as not run if it holds examples."""
    from sandrun.readers import rst  # lazily: only documents with {eval-rst} need it

    raw = doc.lines[block.first : block.first + len(block.lines)]
    if all(
        line.endswith(inner) and not line[: len(line) - len(inner)].strip()
        for line, inner in zip(raw, block.lines, strict=True)
    ):
        return rst.cells_in(doc, block.first, block.end, index)
    if any(_RST_PYTHON.match(line) for line in block.lines):
        return [
            not_run(
                doc,
                index,
                block,
                "reStructuredText examples in an ```{eval-rst} inside a blockquote are not run by sandrun",
            )
        ]
    return []


def _front_matter(doc: Document, text: str) -> tuple[dict[str, Any], str]:
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
    if block.directive and (block.lang in _MYST_PYTHON or argument in (*PYTHON, *CONSOLE)):
        return f"the MyST directive ```{block.lang} is not one sandrun runs"
    if block.lang in PYTHON and IPYTHON_PROMPT.match(first):
        return "an IPython console session (`In [1]:` prompts) is not run by sandrun; write it as >>> lines"
    if not block.directive and block.lang.startswith(("py", "ipy")) and block.lang not in _NOT_PYTHON:
        return f"the language {block.lang!r} is not one sandrun runs (it runs {', '.join(PYTHON + CONSOLE)})"
    if PROMPT.match(first):
        return f"a >>> session in a {block.lang!r} block (fence it as ```pycon to run it)"
    return None

"""Reader for percent-format recipes: Python files cut into cells by `# %%` lines (jupytext, VS Code).

Cells, kinds, titles, tags and sources are what `jupytext.reads(text, fmt="py:percent")` reads, except
that jupytext's magic escaping is left out: sandrun runs plain Python, so `# %time` or `# cd dir` stays a
comment. A shebang, a coding line and a `# ---` YAML header are skipped (the header's non-`jupyter` keys
become a raw cell, as in jupytext). Two tags mean something to sandrun: `raises-exception` (the cell must
raise) and `skip` (the cell is not run).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from sandrun.errors import RecipeError
from sandrun.fences import FenceLine, fence_line
from sandrun.model import ANY_EXCEPTION, Cell, CellKind, Expectation, Recipe
from sandrun.readers import Format, expect_comments, script_metadata
from sandrun.readers.expect_comments import with_expectations
from sandrun.readers.lines import line_starts, text_lines

_MARKER = re.compile(r"^\s*#\s*%%(%*)\s(.*)$")  # a marker that may carry a title and options
_BARE_MARKER = re.compile(r"^\s*#\s*(%%|<codecell>|In\[[0-9 ]*\]:?)\s*$")
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-_.a-zA-Z0-9]+)")
_YAML_FENCE = re.compile(r"^---\s*$")
_JUPYTER_KEY = re.compile(r"^jupyter\s*:\s*$")
_IDENTIFIER = re.compile(r"^[a-zA-Z_.][a-zA-Z0-9_.]*$")  # jupytext's `[a-zA-Z_.]+[a-zA-Z0-9_.]*`, unambiguous
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@/-")
_LITERAL_STARTS = frozenset("\"'0123456789+-.([{tfnNITFsrRbBuU")  # of a JSON value or a Python literal
_WORK_PER_CHAR = 4  # characters read by failed attempts at a value, per character of the options
_KINDS = {"code": CellKind.CODE, "markdown": CellKind.MARKDOWN, "raw": CellKind.RAW}
_HINT = 'write a title, then key=value options with JSON values: `# %% Load data tags=["raises-exception"]`'


class _BadOptions(ValueError):
    """The text after `# %%` is not a title followed by valid options."""


def parse(text: str, path: str, sha256: str) -> Recipe:
    """Read a percent-format recipe. Raises `RecipeError` for bad cell options or a file without code."""
    lines = text_lines(text)
    quoted = _starts_quoted(lines)
    closers = _closing_fences(lines)
    pos, cells = _skip_header(lines, path)
    while pos < len(lines):
        cell, pos = _read_cell(lines, quoted, closers, pos, len(cells), path)
        cells.append(cell)
    if not any(c.kind is CellKind.CODE and c.source.strip() for c in cells):
        raise RecipeError(path, 1, "no code cells in this file", hint="start a code cell with a `# %%` line")
    starts = line_starts(text)
    cells = [with_expectations(c, starts) if c.kind is CellKind.CODE else c for c in cells]
    settings = script_metadata.settings(text, path) if "# /// script" in text else {}
    return Recipe(path=path, sha256=sha256, format="percent", cells=tuple(cells), **settings)


FORMAT = Format(parse, rewrite=expect_comments.rewrite, code=expect_comments.code)
"""Percent recipes: expected texts are `# expect` comments at the end of a cell."""


def _skip_header(lines: list[str], path: str) -> tuple[int, list[Cell]]:
    """Skip a shebang, a coding line and a `# ---` YAML header: return where the cells start, plus a raw
    cell with the header's non-`jupyter` keys if it has any."""
    start, in_jupyter = 0, False
    opening: int | None = None
    kept: list[str] = []
    for i, line in enumerate(lines):
        text = _uncomment(line)
        if (i == 0 and line.startswith("#!")) or (
            i < 2 and _CODING.match(line) and not (i and _CODING.match(lines[0]))
        ):
            start = i + 1
        elif not line.startswith("#") or (opening is None and text.strip() and not _YAML_FENCE.match(text)):
            break
        elif _YAML_FENCE.match(text) and opening is not None:  # the end, with one blank line after it
            end = i + 2 if i + 1 < len(lines) and not _uncomment(lines[i + 1]).strip() else i + 1
            raw = Cell(0, "\n".join(["---", *kept, "---"]), path, opening + 1, kind=CellKind.RAW)
            return end, [raw] if kept else []
        elif _YAML_FENCE.match(text):
            opening = i
        else:
            in_jupyter = bool(_JUPYTER_KEY.match(text)) or (in_jupyter and not text[:1].strip())
            kept.extend([] if in_jupyter else [text])
    return start, []


def _read_cell(
    lines: list[str], quoted: list[bool], closers: list[dict[str, FenceLine]], pos: int, index: int, path: str
) -> tuple[Cell, int]:
    """Read the cell that starts at `lines[pos]`; return it and where the next cell starts."""
    head = lines[pos]
    marked = bool(_MARKER.match(head) or _BARE_MARKER.match(head))
    kind, name, tags = _options(head, pos + 1, path) if _MARKER.match(head) else ("code", None, ())
    nxt = _next_marker(lines, quoted, closers, pos, kind != "code")
    body = lines[pos + marked : pos + _content_length(lines[pos:nxt])]
    source = "\n".join(body) if kind == "code" else _prose(body)
    expect = Expectation(error=ANY_EXCEPTION) if "raises-exception" in tags else Expectation()
    line = pos + marked + 1
    skip = "skip" in tags
    reason = "the `skip` tag of its `# %%` line" if skip else None
    cell = Cell(
        index, source, path, line, kind=_KINDS[kind], name=name, tags=tags, skip=skip, expect=expect,
        skip_reason=reason,
    )  # fmt: skip
    return cell, nxt


def _next_marker(
    lines: list[str], quoted: list[bool], closers: list[dict[str, FenceLine]], pos: int, prose: bool
) -> int:
    """Where the next cell starts: the next marker not in a string (nor, in prose, in a fenced block that
    some later line closes: `closers[i + 1]` holds the longest closing fences after line i)."""
    fence: FenceLine | None = None
    for i in range(pos, len(lines)):
        if quoted[i]:
            continue
        if prose and fence:
            line = _fence(lines[i])
            fence = None if line and line.closes(fence, jupytext=True) else fence
            continue
        opening = _fence(lines[i]) if prose else None
        if opening and opening.opens:
            closer = closers[i + 1].get(opening.marker[0])
            fence = opening if closer and closer.closes(opening, jupytext=True) else None
            if fence:
                continue
        if i > pos and (_MARKER.match(lines[i]) or _BARE_MARKER.match(lines[i])):
            return i
    return len(lines)


def _content_length(chunk: list[str]) -> int:
    """How many lines of a cell's chunk (marker included) are left once the blank lines before the next
    cell are cut: exactly two blank lines, or else one empty line (whitespace-only lines are content)."""
    if len(chunk) >= 3 and chunk[-3].strip() and not chunk[-2].strip() and not chunk[-1].strip():
        return len(chunk) - 2
    return len(chunk) - 1 if chunk[-1] == "" else len(chunk)


def _prose(body: list[str]) -> str:
    """The text of a markdown or raw cell: unwrapped from a triple-quoted string, or uncommented."""
    content = "\n".join(body).strip()
    for left in ('"""', "'''", 'r"""', "r'''", 'R"""', "R'''"):
        if content.startswith(left) and content.endswith(left[-3:]) and len(content) >= len(left) + 3:
            inner = content[len(left) : -3].removeprefix("\n").removesuffix("\n")
            return "\n".join(text_lines(inner))
    return "\n".join(_uncomment(line) for line in body)


def _uncomment(line: str) -> str:
    """Remove a leading `# ` (or `#`)."""
    return line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line


def _fence(line: str) -> FenceLine | None:
    """The markdown code fence on this (commented) line, if any."""
    return fence_line(_uncomment(line))


def _closing_fences(lines: list[str]) -> list[dict[str, FenceLine]]:
    """For each i, the longest closing fence (by its character) among `lines[i:]`: one pass, from the end."""
    result: list[dict[str, FenceLine]] = [{}]
    for line in reversed(lines):
        fence = _fence(line)
        longest = result[-1]
        if fence and fence.closes(longest.get(fence.marker[0], fence), jupytext=True):  # a closing fence at
            longest = {**longest, fence.marker[0]: fence}  # least as long as any after it
        result.append(longest)
    return result[::-1]


def _starts_quoted(lines: list[str]) -> list[bool]:
    """For each line, whether it starts inside a triple-quoted string (jupytext's simple scan)."""
    result: list[bool] = []
    triple: str | None = None
    for line in lines:
        result.append(triple is not None)
        if triple is None and line.lstrip().startswith("#"):
            continue
        single, triple_start = None, -1
        for i, char in enumerate(line):
            if char == "#" and not (single or triple):
                break
            if char not in "\"'" or line[i - 1 : i] == "\\" or (single and single != char):
                continue
            if single:
                single = None
            elif line[i - 2 : i + 1] == 3 * char and i >= triple_start + 3:
                if triple in (None, char):
                    triple, triple_start = (None if triple else char), i
            elif triple is None:
                single = char
    return result


def _options(line: str, number: int, path: str) -> tuple[str, str | None, tuple[str, ...]]:
    """Kind, title and tags from the `# %%` line number `number`, read the way jupytext reads them."""
    try:
        title, meta = _title_and_metadata(line[line.find("%%") + 2 :])
    except _BadOptions:
        shown = line.strip() if len(line.strip()) <= 100 else line.strip()[:100] + "..."
        raise RecipeError(path, number, f"cannot read the cell options in {shown!r}", _HINT) from None
    word = next((w for w in ("markdown", "raw", "md") if f"[{w}]" in title), None)
    if word:
        title = title.replace(f"[{word}]", "").strip()
        meta["cell_type"] = "raw" if word == "raw" else "markdown"
    if title.startswith("%"):  # Spyder's sub-cells: `# %%% title`
        title = title.lstrip("%").strip()
    problem = _problem(meta)
    if problem:
        raise RecipeError(path, number, problem, _HINT)
    return meta.get("cell_type", "code"), title or meta.get("title"), tuple(meta.get("tags", []))


def _problem(meta: dict[str, Any]) -> str | None:
    """What sandrun cannot accept in these cell options, if anything."""
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "`tags` must be a list of strings"
    if meta.get("cell_type", "code") not in _KINDS or not isinstance(meta.get("title", ""), str):
        return "`cell_type` must be code, markdown or raw, and `title` a string"
    if "active" in meta or "language" in meta or any(t.startswith("active-") for t in tags):
        return "jupytext's `active` and `language` options are not supported (sandrun runs every code cell)"
    return None


def _title_and_metadata(text: str) -> tuple[str, dict[str, Any]]:
    """Split `Title key=value ...` or `Title {json}` into the title and the metadata."""
    text = text.strip()
    curly, equal = text.find("{"), text.find("=")
    if curly >= 0 and not 0 <= equal < curly:
        meta = _literal(text[curly:])
        if not isinstance(meta, dict):
            raise _BadOptions(text)
        return text[:curly].strip(), meta
    words = text[:equal].rstrip(" ").split(" ")[:-1] if equal >= 0 else text.split(" ")
    while words and (not words[-1].strip() or words[-1].startswith(".")):
        words.pop()  # the title ends before trailing `.attributes`
    title = " ".join(words)
    return title, _key_values(text[len(title) :])


def _key_values(text: str) -> dict[str, Any]:
    """Parse `key1=value1 flag key2=value2` (values in JSON or Python syntax) as jupytext does: from the
    right, each value being the shortest tail after a `key=` that reads as a literal, each flag a bare word.

    Without recursion, and in time linear in the length: keys are checked before values, a tail is only
    read if it can start a literal, and tails that do not read may cost `_WORK_PER_CHAR` characters each
    of the options in all (past that, the options are refused as unreadable)."""
    found: list[tuple[str, Any, bool]] = []  # right to left: key, value, whether it is a bare flag
    budget = _WORK_PER_CHAR * len(text) + 65536
    start, stop = 0, len(text)
    while True:
        start, stop = _strip(text, start, stop)
        if start == stop:
            break
        space = text.rfind(" ", start, stop)
        last = text[max(space + 1, start) : stop]
        if not text.startswith("--", start, stop) and _IDENTIFIER.match(last):
            found.append((last, None, True))
            stop = max(space, start)
            continue
        eq = stop
        while True:
            eq = text.rfind("=", start, eq)
            if eq < 0:
                raise _BadOptions(text)
            key, before = _key_before(text, start, eq)
            if key is None or not _could_be_literal(text, eq + 1, stop):
                continue
            budget -= stop - eq
            if budget < 0:
                raise _BadOptions(text)
            try:
                value = _literal(text[eq + 1 : stop])
            except _BadOptions:
                continue
            found.append((key, value, False))
            stop = max(before, start)
            break
    result: dict[str, Any] = {}
    for key, value, flag in reversed(found):  # a flag does not replace a value given on its left
        if flag:
            result.setdefault(key, None)
        else:
            result[key] = value
    return result


def _strip(text: str, start: int, stop: int) -> tuple[int, int]:
    """`text[start:stop].strip()` as bounds."""
    while start < stop and text[start].isspace():
        start += 1
    while stop > start and text[stop - 1].isspace():
        stop -= 1
    return start, stop


def _key_before(text: str, start: int, eq: int) -> tuple[str | None, int]:
    """The key written before the `=` at `eq` (None if it is not a valid key), and the offset of the space
    before that key (`start` if it begins the text): jupytext's `text[:eq].rstrip().rfind(" ")`."""
    end = eq
    while end > start and text[end - 1].isspace():
        end -= 1
    first = end
    while first > start and text[first - 1] in _KEY_CHARS:
        first -= 1
    space = first
    while space > start and text[space - 1].isspace() and text[space - 1] != " ":
        space -= 1
    if space > start and text[space - 1] != " ":
        return None, start  # the word before `=` holds something no key may hold
    return (text[first:end] or None), max(space - 1, start)


def _could_be_literal(text: str, start: int, stop: int) -> bool:
    """Whether `text[start:stop]` starts (after white space) the way a JSON value or Python literal does."""
    while start < stop and text[start].isspace():
        start += 1
    return start < stop and text[start] in _LITERAL_STARTS


def _literal(text: str) -> object:
    """A JSON value, or else a Python literal; `_BadOptions` if it is neither."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise _BadOptions(text) from None

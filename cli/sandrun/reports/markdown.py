"""The Markdown transcript: a run as a page readable on GitHub (a PR comment, a job summary, a gist).

Layout: a title with the recipe and the overall status; a header list (recipe file, backend, isolation,
Python version, start time, duration, limits); a summary table with one row per cell; then every cell in
order. Markdown cells appear as prose, their source as-is; raw cells in a plain fence; code cells under a
heading, with their code in a ```` ```python ```` fence, their output, trailing value, error and reason.

Output keeps the order in which it was produced: consecutive chunks of the same stream are merged, and
each run becomes its own ```` ```text ```` fence. A stderr run is introduced by an italic *stderr* line,
a stdout run that follows stderr by an italic *stdout* line, so the two can be told apart while staying
interleaved. Fenced text is shown verbatim except that `\\r\\n` and lone `\\r` become `\\n` (Markdown
treats both as line ends anyway). Every fence is one backtick longer than the longest run of backticks
that begins a line of its content (at least three), so no content can close it early.

Rich output (`display()`, figures, rich values): with `files_dir` set, an image is linked as
`![its text/plain](files_dir/<digest>.png)`, the file being written beside the report by the caller
(`sandrun.reports.rich.image_files`); anything else, or any rich output without `files_dir`, shows its
text/plain in a fence.
"""

from __future__ import annotations

import re

from sandrun.durations import format_duration
from sandrun.fences import FenceLine, fence_for, fence_line
from sandrun.model import RESULT, CellKind, CellResult, CellStatus, OutputChunk, Transcript, merged_runs

_BACKTICKS = re.compile(r"`+")
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")
_STATUS_WORD = {
    CellStatus.PASSED: "passed",
    CellStatus.FAILED: "FAILED",
    CellStatus.ERROR: "ERROR",
    CellStatus.TIMEOUT: "TIMEOUT",
    CellStatus.SKIPPED: "skipped",
    CellStatus.NOT_RUN: "not run",
}


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def fence(content: str, info: str = "") -> str:
    """`content` in a backtick code fence that nothing inside it can close, followed by no newline."""
    content = _normalize_newlines(content)
    ticks = fence_for(content)
    if not content.endswith("\n"):
        content += "\n"
    return f"{ticks}{info}\n{content}{ticks}"


def code_span(text: str, in_table: bool = False) -> str:
    """`text` on one line as an inline code span; `in_table` escapes pipes, as GitHub tables need."""
    text = " ".join(_normalize_newlines(text).split("\n"))
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    spaced = text.startswith(" ") and text.endswith(" ")
    pad = " " if text.startswith("`") or text.endswith("`") or spaced or not text else ""
    if in_table:
        text = text.replace("|", "\\|")
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _close_open_fence(prose: str) -> str:
    """`prose` with a closing fence appended if it leaves a code fence open (it would swallow the page)."""
    opened: FenceLine | None = None
    for line in prose.split("\n"):
        found = fence_line(line)
        if found is None:
            continue
        if opened is None:
            opened = found if found.opens else None
        elif found.closes(opened):
            opened = None
    return prose if opened is None else f"{prose}\n{opened.marker}"


def escape(text: str) -> str:
    """`text` on one line, with the characters Markdown would interpret backslash-escaped."""
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(_normalize_newlines(text).split("\n")))


def _title(t: Transcript) -> str:
    recipe = t.recipe
    what = f"{escape(recipe.name)} ({code_span(recipe.path)})" if recipe.name else code_span(recipe.path)
    return f"# {what}: {t.status.value}"


def _header(t: Transcript) -> list[str]:
    recipe = t.recipe
    lines = [
        f"- **Status:** {t.status.value}" + (f": {escape(t.reason)}" if t.reason else ""),
        f"- **Recipe:** {code_span(recipe.path)} ({escape(recipe.format)}, sha256 "
        f"{code_span(recipe.sha256[:12])})",
        f"- **Backend:** {escape(t.backend)} (isolation: {escape(t.isolation)})",
        f"- **Python:** {escape(t.python_version) if t.python_version else 'unknown'}",
        f"- **Started:** {escape(t.started_at)}",
        f"- **Duration:** {format_duration(t.duration)}",
        f"- **sandrun:** {escape(t.tool_version)}",
    ]
    if t.limits:
        limits = ", ".join(code_span(f"{key}={value}") for key, value in t.limits.items())
        lines.append(f"- **Limits:** {limits}")
    if recipe.description:
        lines += ["", *(f"> {line}".rstrip() for line in _normalize_newlines(recipe.description).split("\n"))]
    return lines


def _summary(t: Transcript) -> list[str]:
    lines = ["## Summary", "", "| # | Cell | Location | Status | Duration |", "|---:|---|---|---|---:|"]
    for r in t.results:
        cell = r.cell
        duration = (
            format_duration(r.duration) if r.status not in (CellStatus.SKIPPED, CellStatus.NOT_RUN) else ""
        )
        name = escape(cell.label) + ("" if cell.kind is CellKind.CODE else f" ({cell.kind.value})")
        where = code_span(cell.location, in_table=True)
        lines.append(f"| {cell.index + 1} | {name} | {where} | {_STATUS_WORD[r.status]} | {duration} |")
    counts = [f"{t.count(s)} {_STATUS_WORD[s].lower()}" for s in CellStatus if t.count(s)]
    lines += [
        "",
        f"{len(t.results)} cell{'s' if len(t.results) != 1 else ''}: "
        + (", ".join(counts) if counts else "none")
        + ".",
    ]
    return lines


def _rich(chunk: OutputChunk, files_dir: str | None) -> list[str]:
    from sandrun.reports.rich import image_name, image_of

    image = image_of(chunk) if files_dir is not None else None
    if image is None:
        return [fence(chunk.text, "text"), ""]
    alt = escape(chunk.text.split("\n", 1)[0][:100])
    return [f"![{alt}]({files_dir}/{image_name(*image)})", ""]


def _code_cell(r: CellResult, files_dir: str | None) -> list[str]:
    cell = r.cell
    lines = [f"### {cell.index + 1}. {escape(cell.label)}: {_STATUS_WORD[r.status]}", ""]
    meta = [code_span(cell.location)]
    if r.status not in (CellStatus.SKIPPED, CellStatus.NOT_RUN):
        meta.append(format_duration(r.duration))
    if cell.tags:
        meta.append("tags: " + ", ".join(code_span(tag) for tag in cell.tags))
    if cell.expect.error:
        meta.append(f"expected to raise {code_span(cell.expect.error)}")
    if r.peak_memory is not None:
        meta.append(f"peak memory {r.peak_memory / 2**20:.1f} MiB")
    lines += [" · ".join(meta), "", fence(cell.source, "python"), ""]
    previous = "stdout"
    rich_value = False
    for run in merged_runs(r.outputs):
        if run.rich:  # no stream label, but a value says it is one
            rich_value = rich_value or run.stream == RESULT
            lines += (["*value:*", ""] if run.stream == RESULT else []) + _rich(run, files_dir)
            continue
        if run.stream != previous:
            lines += [f"*{run.stream}:*", ""]
        lines += [fence(run.text, "text"), ""]
        previous = run.stream
    if r.value is not None and not rich_value:
        lines += ["*value:*", "", fence(r.value, "text"), ""]
    if r.error is not None:
        where = f" (line {r.error.line})" if r.error.line is not None else ""
        summary = f"{r.error.type}: {r.error.message}".split("\n", 1)[0]
        label = "Raised, as expected" if r.status is CellStatus.PASSED else "Error"
        lines += [f"**{label}{where}:** {code_span(summary)}", ""]
        lines += [fence(r.error.traceback or f"{r.error.type}: {r.error.message}", "text"), ""]
    if r.reason:
        lines += [f"**Reason:** {escape(r.reason)}", ""]
    if r.diff:
        lines += [fence(r.diff, "diff"), ""]
    if not r.reason and r.status is CellStatus.SKIPPED:
        lines += ["**Reason:** the recipe marks it to be skipped", ""]
    return lines


def _cell(r: CellResult, files_dir: str | None) -> list[str]:
    if r.cell.kind is CellKind.MARKDOWN:
        return [_close_open_fence(_normalize_newlines(r.cell.source).strip("\n")), ""]
    if r.cell.kind is CellKind.RAW:
        return [
            f"*{escape(r.cell.label)} (raw, {code_span(r.cell.location)}):*",
            "",
            fence(r.cell.source),
            "",
        ]
    return _code_cell(r, files_dir)


def render_markdown(t: Transcript, files_dir: str | None = None) -> str:
    """The transcript as a GitHub-flavoured Markdown page, ending with a newline; images are linked in
    `files_dir` (a relative URL), or shown as their text/plain when it is None."""
    lines = [_title(t), "", *_header(t), "", *_summary(t), "", "## Cells", ""]
    for r in t.results:
        lines += _cell(r, files_dir)
    return "\n".join(lines).rstrip("\n") + "\n"

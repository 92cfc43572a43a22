"""The HTML report (`--report out.html`): one self-contained page, readable on a phone, needing no network.

A summary table at the top (one row per recipe, then one per cell, linked to it), then each recipe and
cell: status colours, source with line numbers, outputs in order (text, images inline as `data:` URLs,
rich HTML in a sandboxed frame), the value, diffs of failed expectations and tracebacks. A "failures only"
switch hides what passed; it is CSS, not script: the page runs no script at all, and its
Content-Security-Policy forbids any (so HTML a cell displayed cannot run script either, and nothing is
fetched from the network).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from sandrun.durations import format_duration
from sandrun.model import RESULT, CellKind, CellResult, CellStatus, OutputChunk, Transcript
from sandrun.reports.rich import image_of

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-src 'self' data:"
STYLE = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --dim: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 12px; max-width: 1000px;
       color: #1f2328; overflow-wrap: anywhere; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1em; margin: 0 0 .4em; }
table.summary { border-collapse: collapse; width: 100%; display: block; overflow-x: auto; }
table.summary td, table.summary th { border: 1px solid var(--line); padding: 3px 8px; text-align: left; }
.status { font-weight: 600; text-transform: uppercase; font-size: .8em; }
.passed .status, .status.passed { color: var(--ok); }
.skipped .status, .not_run .status { color: var(--dim); }
.failed .status, .error .status, .timeout .status, .status.failed, .status.error, .status.timeout,
.status.interrupted { color: var(--bad); }
.cell { border: 1px solid var(--line); border-left: 6px solid var(--line); border-radius: 6px;
        padding: 8px 10px; margin: 10px 0; }
.cell.passed { border-left-color: var(--ok); }
.cell.failed, .cell.error, .cell.timeout { border-left-color: var(--bad); }
.cell.skipped, .cell.not_run { border-left-color: var(--dim); opacity: .8; }
.meta { color: var(--dim); font-size: .85em; }
pre { background: #f6f8fa; padding: 6px 8px; overflow-x: auto; margin: 6px 0; font-size: 13px; }
pre.stderr { background: #fff1f0; } pre.diff { background: #fffbe6; } pre.traceback { background: #fff1f0; }
ol.source { background: #f6f8fa; margin: 6px 0; padding: 6px 8px 6px 3.5em; overflow-x: auto;
            font: 13px/1.4 ui-monospace, monospace; }
ol.source li { white-space: pre; } ol.source li::marker { color: var(--dim); }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
iframe { width: 100%; border: 1px solid var(--line); min-height: 8em; }
.prose { white-space: pre-wrap; }
#failures-only:checked ~ main .cell.passed, #failures-only:checked ~ main .cell.skipped,
#failures-only:checked ~ main .cell.not_run, #failures-only:checked ~ main .recipe.passed { display: none; }
label.switch { display: inline-block; margin: 8px 0; padding: 4px 8px; border: 1px solid var(--line);
               border-radius: 6px; }
"""
FAILING = (CellStatus.FAILED, CellStatus.ERROR, CellStatus.TIMEOUT)


def render_html(transcripts: Sequence[Transcript]) -> str:
    """The transcripts as one HTML page, ending with a newline."""
    title = "sandrun: " + ", ".join(t.recipe.name or t.recipe.path for t in transcripts)
    body = [
        '<input type="checkbox" id="failures-only" hidden>',
        f"<h1>{escape(title)}</h1>",
        '<label class="switch" for="failures-only">Show failures only / everything</label>',
        *_summary(transcripts),
        "<main>",
        *(line for number, t in enumerate(transcripts) for line in _recipe(t, number)),
        "</main>",
    ]
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
    ]
    return "\n".join([*head, *body, "</body></html>"]) + "\n"


def _summary(transcripts: Sequence[Transcript]) -> list[str]:
    rows = ['<table class="summary"><tr><th>Recipe / cell</th><th>Status</th><th>Time</th></tr>']
    for number, t in enumerate(transcripts):
        rows.append(
            f'<tr><td><a href="#r{number}">{escape(t.recipe.path)}</a></td>'
            f'<td class="status {t.status.value}">{t.status.value}</td>'
            f"<td>{format_duration(t.duration)}</td></tr>"
        )
        for r in t.results:
            if r.cell.kind is CellKind.CODE and r.status in FAILING:
                rows.append(
                    f'<tr><td>&nbsp;&nbsp;<a href="#r{number}c{r.cell.index}">{escape(r.cell.label)}</a> '
                    f'({escape(r.cell.location)})</td><td class="status {r.status.value}">'
                    f"{r.status.value}</td><td>{format_duration(r.duration)}</td></tr>"
                )
    return [*rows, "</table>"]


def _recipe(t: Transcript, number: int) -> list[str]:
    counts = ", ".join(f"{t.count(s)} {s.value.replace('_', ' ')}" for s in CellStatus if t.count(s))
    lines = [
        f'<section class="recipe {t.status.value}" id="r{number}">',
        f'<h2>{escape(t.recipe.path)}: <span class="status {t.status.value}">{t.status.value}</span></h2>',
        f'<p class="meta">{escape(counts)} · backend {escape(t.backend)} (isolation {escape(t.isolation)})'
        f" · Python {escape(t.python_version or 'unknown')} · {escape(t.started_at)}"
        f" · {format_duration(t.duration)}</p>",
    ]
    if t.reason:
        lines.append(f"<p><strong>Reason:</strong> {escape(t.reason)}</p>")
    for r in t.results:
        lines += _cell(r, f"r{number}c{r.cell.index}")
    return [*lines, "</section>"]


def _cell(r: CellResult, anchor: str) -> list[str]:
    cell = r.cell
    status = r.status.value
    if cell.kind is CellKind.MARKDOWN:
        prose = f'<div class="prose">{escape(cell.source)}</div>'
        return [f'<div class="cell prose-cell {status}" id="{anchor}">{prose}</div>']
    ran = r.status not in (CellStatus.SKIPPED, CellStatus.NOT_RUN)
    word = status.replace("_", " ")
    lines = [
        f'<div class="cell {status}" id="{anchor}">',
        f'<h3>{cell.index + 1}. {escape(cell.label)} <span class="status">{word}</span></h3>',
        f'<p class="meta">{escape(cell.location)}'
        + (f" · {format_duration(r.duration)}" if ran else "")
        + (" · tags: " + escape(", ".join(cell.tags)) if cell.tags else "")
        + "</p>",
        _source(cell.source, cell.line),
    ]
    rich_value = False
    for chunk in r.outputs:
        rich_value = rich_value or chunk.stream == RESULT
        lines.append(_output(chunk))
    if r.value is not None and not rich_value:
        lines.append(f'<pre class="value">{escape(r.value)}</pre>')
    if r.error is not None and r.status is not CellStatus.NOT_RUN:
        text = r.error.traceback or f"{r.error.type}: {r.error.message}"
        label = "Raised, as expected" if r.status is CellStatus.PASSED else "Error"
        lines.append(f'<p><strong>{label}:</strong></p><pre class="traceback">{escape(text)}</pre>')
    if r.reason and r.status is not CellStatus.PASSED:
        lines.append(f"<p><strong>Reason:</strong> {escape(r.reason)}</p>")
    if r.diff:
        lines.append(f'<pre class="diff">{escape(r.diff)}</pre>')
    return [*lines, "</div>"]


def _source(source: str, first: int) -> str:
    items = "".join(f"<li>{escape(line) or ' '}</li>" for line in source.split("\n"))
    return f'<ol class="source" start="{first}">{items}</ol>'


def _output(chunk: OutputChunk) -> str:
    if chunk.data is None:
        return f'<pre class="{chunk.stream}">{escape(chunk.text)}</pre>'
    image = image_of(chunk)
    if image is not None:
        mime, content = image
        url = f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"
        return f'<img src="{escape(url)}" alt="{escape(chunk.text[:200])}">'
    html = chunk.data.get("text/html")
    if html is not None:  # in a frame without scripts: the cell's markup cannot touch this page
        return f'<iframe sandbox="" srcdoc="{escape(html)}" title="{escape(chunk.text[:200])}"></iframe>'
    return f'<pre class="display">{escape(chunk.text)}</pre>'

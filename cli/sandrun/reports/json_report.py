"""The JSON transcript (`sandrun.transcript/4`): the machine-readable record of a run.

The layout is described by `schemas/transcript.schema.json`, shipped inside the package (`load_schema`).
A saved transcript can be rendered again later in another format: `transcript_from_dict` gives back
everything `transcript_to_dict` wrote, and what it did not write comes back empty. That is `Recipe.env`
(never written: it may hold secrets), the recipe's other run settings (`network`, `python`, `files`,
`backend`, `packages`), and each `ExpectedText`'s `span` and `doctest` flags (which matter only to
judging a run and to `--update`, both done from the recipe).

Each cell's entry carries both the `Cell` (index, name, kind, source, line, tags, timeout, skip, expect)
and its `CellResult` (status, outputs, value, error, duration, reason, diff, mismatch, mismatch_line,
peak_memory), plus `stdout` and `stderr`: the concatenated text of `outputs`, for readers that do not care
about interleaving. A cell's path is not repeated; it is the recipe's path.

Version 2 adds rich output to `outputs`: entries with `stream` `display` (shown by `display()` or a
matplotlib figure) or `result` (a trailing expression's rich value), whose `text` is their text/plain and
whose `data` is the MIME bundle (binary data base64) with its `metadata`. Every field of version 1 is kept,
and version 1 transcripts are still read.

Version 3 adds what a document reader noticed: the recipe's `warnings`, and on each cell `unsupported`
(a block that looks like Python but is not run: found but not run, counted in the summary's
`found_not_run`), `skip_reason` (what in the file skips it) and `skip_if` (Sphinx's `:skipif:`
expression and its line). Versions 1 and 2 are still read; those fields come back empty.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from sandrun.model import (
    TRANSCRIPT_SCHEMA,
    Cell,
    CellError,
    CellKind,
    CellResult,
    CellStatus,
    Condition,
    Expectation,
    ExpectedText,
    MatchMode,
    OutputChunk,
    Recipe,
    RunStatus,
    Transcript,
)

TOOL_NAME = "sandrun"
SCHEMA_RESOURCE = "schemas/transcript.schema.json"
READABLE = ("sandrun.transcript/1", "sandrun.transcript/2", "sandrun.transcript/3")
"""Older schemas whose transcripts are still read back."""


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the transcript, read from the installed package."""
    text = resources.files("sandrun").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _error_to_dict(error: CellError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback, "line": error.line}


def _result_to_dict(result: CellResult) -> dict[str, Any]:
    cell = result.cell
    return {
        "index": cell.index,
        "name": cell.name,
        "kind": cell.kind.value,
        "source": cell.source,
        "line": cell.line,
        "tags": list(cell.tags),
        "timeout": cell.timeout,
        "skip": cell.skip,
        "skip_reason": cell.skip_reason,
        "skip_if": None if cell.skip_if is None else {"text": cell.skip_if.text, "line": cell.skip_if.line},
        "unsupported": cell.unsupported,
        "status": result.status.value,
        "outputs": [_output_to_dict(chunk) for chunk in result.outputs],
        "stdout": result.stdout,
        "stderr": result.stderr,
        "value": result.value,
        "error": _error_to_dict(result.error),
        "duration": result.duration,
        "reason": result.reason,
        "diff": result.diff,
        "mismatch": result.mismatch,
        "mismatch_line": result.mismatch_line,
        "peak_memory": result.peak_memory,
        "expect": _expect_to_dict(cell.expect),
    }


def _expect_to_dict(expect: Expectation) -> dict[str, Any]:
    texts = {
        what: {"text": text.text, "mode": text.mode.value, "line": text.line}
        for what, text in expect.texts().items()
    }
    return {"error": expect.error, "error_message": expect.error_message, **texts}


def _expect_from_dict(d: Mapping[str, Any]) -> Expectation:
    texts = {
        what: ExpectedText(text=d[what]["text"], mode=MatchMode(d[what]["mode"]), line=d[what].get("line"))
        for what in ("stdout", "stderr", "value", "repl")
        if d.get(what)
    }
    return Expectation(error=d.get("error"), error_message=d.get("error_message"), **texts)


def transcript_to_dict(t: Transcript) -> dict[str, Any]:
    """The transcript as plain JSON-ready data, in the layout of `transcript.schema.json`.

    Only results are written: a recipe cell without a result does not appear (the runner gives every
    cell one, `not_run` at worst).
    """
    summary: dict[str, int] = {status.value: t.count(status) for status in CellStatus}
    summary["found_not_run"] = sum(1 for r in t.results if r.cell.unsupported)
    summary["total"] = len(t.results)
    recipe = t.recipe
    return {
        "schema": TRANSCRIPT_SCHEMA,
        "tool": {"name": TOOL_NAME, "version": t.tool_version},
        "recipe": {
            "path": recipe.path,
            "sha256": recipe.sha256,
            "format": recipe.format,
            "name": recipe.name,
            "description": recipe.description,
            "timeout": recipe.timeout,
            "warnings": list(recipe.warnings),
        },
        "backend": {"name": t.backend, "isolation": t.isolation},
        "python_version": t.python_version,
        "started_at": t.started_at,
        "duration": t.duration,
        "status": t.status.value,
        "reason": t.reason,
        "limits": dict(t.limits),
        "summary": summary,
        "cells": [_result_to_dict(r) for r in t.results],
    }


def render_json(t: Transcript) -> str:
    """The transcript as indented JSON text (UTF-8 characters kept as they are), ending with a newline."""
    return json.dumps(transcript_to_dict(t), indent=2, ensure_ascii=False) + "\n"


def _error_from_dict(d: Mapping[str, Any] | None) -> CellError | None:
    if d is None:
        return None
    return CellError(
        type=d["type"], message=d["message"], traceback=d.get("traceback", ""), line=d.get("line")
    )


def _result_from_dict(d: Mapping[str, Any], path: str) -> CellResult:
    expect = d.get("expect") or {}
    cell = Cell(
        index=d["index"],
        source=d["source"],
        path=path,
        line=d["line"],
        kind=CellKind(d["kind"]),
        name=d.get("name"),
        tags=tuple(d.get("tags", ())),
        timeout=d.get("timeout"),
        skip=d.get("skip", False),
        expect=_expect_from_dict(expect),
        unsupported=d.get("unsupported"),
        skip_reason=d.get("skip_reason"),
        skip_if=Condition(skip_if["text"], skip_if["line"]) if (skip_if := d.get("skip_if")) else None,
    )
    return CellResult(
        cell=cell,
        status=CellStatus(d["status"]),
        outputs=tuple(_output_from_dict(o) for o in d.get("outputs", ())),
        value=d.get("value"),
        error=_error_from_dict(d.get("error")),
        duration=d.get("duration", 0.0),
        reason=d.get("reason"),
        diff=d.get("diff"),
        mismatch=d.get("mismatch"),
        mismatch_line=d.get("mismatch_line"),
        peak_memory=d.get("peak_memory"),
    )


def _output_to_dict(chunk: OutputChunk) -> dict[str, Any]:
    out: dict[str, Any] = {"stream": chunk.stream, "text": chunk.text}
    if chunk.data is not None:
        out["data"] = dict(chunk.data)
        out["metadata"] = dict(chunk.metadata or {})
    return out


def _output_from_dict(o: Mapping[str, Any]) -> OutputChunk:
    if "data" not in o:
        return OutputChunk(stream=o["stream"], text=o["text"])
    return OutputChunk(o["stream"], o["text"], dict(o["data"]), dict(o.get("metadata") or {}))


def transcript_from_dict(d: Mapping[str, Any]) -> Transcript:
    """Rebuild a `Transcript` from `transcript_to_dict` output (or a parsed JSON transcript file).

    The redundant `stdout`/`stderr`/`summary` fields are ignored: they are recomputed from `outputs` and
    the cells. What is never written comes back empty (see the module docstring). Raises ValueError when
    the data is not a `sandrun.transcript/1` to `/4` transcript, and KeyError when a required field
    is missing.
    """
    if d.get("schema") not in (TRANSCRIPT_SCHEMA, *READABLE):
        raise ValueError(f"not a {TRANSCRIPT_SCHEMA} transcript (schema is {d.get('schema')!r})")
    rec = d["recipe"]
    results = tuple(_result_from_dict(c, rec["path"]) for c in d["cells"])
    recipe = Recipe(
        path=rec["path"],
        sha256=rec["sha256"],
        format=rec["format"],
        cells=tuple(r.cell for r in results),
        name=rec.get("name"),
        description=rec.get("description"),
        timeout=rec.get("timeout"),
        env={},
        warnings=tuple(rec.get("warnings", ())),
    )
    return Transcript(
        recipe=recipe,
        backend=d["backend"]["name"],
        isolation=d["backend"]["isolation"],
        status=RunStatus(d["status"]),
        results=results,
        started_at=d["started_at"],
        duration=d["duration"],
        tool_version=d["tool"]["version"],
        python_version=d.get("python_version"),
        reason=d.get("reason"),
        limits=dict(d.get("limits") or {}),
    )

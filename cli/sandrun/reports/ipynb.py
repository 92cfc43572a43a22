"""The executed notebook (`--format ipynb`, `--report out.ipynb`): a transcript as a Jupyter notebook.

nbformat 4.5, valid per `nbformat.validate`, written as Jupyter writes it (one-space indentation, sorted
keys, a final newline). Any recipe becomes one: markdown cells stay markdown, raw cells raw, and each code
cell carries its outputs in order (`stream`, `display_data`, `execute_result`, `error` with its traceback)
and an execution count (cells that did not run have none). A cell's `metadata.sandrun` says its status,
duration in seconds and reason; the notebook's `metadata.sandrun` the recipe, run status and backend.
Several transcripts make one notebook, each recipe under a heading of its own.

`cell_outputs` is also what `--update` writes back into a notebook recipe.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sandrun.model import RESULT, CellKind, CellResult, CellStatus, Transcript, merged_runs

NOT_EXECUTED = (CellStatus.SKIPPED, CellStatus.NOT_RUN)


def cell_outputs(result: CellResult, count: int | None) -> list[dict[str, Any]]:
    """A code cell's outputs in nbformat 4's shape, in the order they were produced."""
    outputs: list[dict[str, Any]] = []
    has_result = False
    for chunk in merged_runs(result.outputs):
        if chunk.data is None:
            outputs.append({"name": chunk.stream, "output_type": "stream", "text": chunk.text})
            continue
        data = {mime: _mime_value(mime, text) for mime, text in chunk.data.items()}
        metadata = dict(chunk.metadata or {})
        if chunk.stream == RESULT:
            has_result = True
            out = {
                "data": data,
                "execution_count": count,
                "metadata": metadata,
                "output_type": "execute_result",
            }
            outputs.append(out)
        else:
            outputs.append({"data": data, "metadata": metadata, "output_type": "display_data"})
    if result.value is not None and not has_result:
        data = {"text/plain": result.value}
        outputs.append(
            {"data": data, "execution_count": count, "metadata": {}, "output_type": "execute_result"}
        )
    if result.error is not None and result.status is not CellStatus.NOT_RUN:
        traceback = result.error.traceback or f"{result.error.type}: {result.error.message}"
        outputs.append(
            {
                "ename": result.error.type,
                "evalue": result.error.message,
                "output_type": "error",
                "traceback": traceback.rstrip("\n").split("\n"),
            }
        )
    return outputs


def _execute_result(data: dict[str, Any], metadata: dict[str, Any], count: int | None) -> dict[str, Any]:
    return {"data": data, "execution_count": count, "metadata": metadata, "output_type": "execute_result"}


def _mime_value(mime: str, text: str) -> Any:
    """JSON data as an object (nbformat wants it so); everything else as the text it is."""
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return {"text": text}
    return text


def _cell(result: CellResult, count: int | None) -> dict[str, Any]:
    cell = result.cell
    cell_id = f"cell-{cell.index + 1}"
    metadata: dict[str, Any] = {"tags": list(cell.tags)} if cell.tags else {}
    if cell.kind is CellKind.MARKDOWN:
        return {"cell_type": "markdown", "id": cell_id, "metadata": metadata, "source": cell.source}
    if cell.kind is CellKind.RAW:
        return {"cell_type": "raw", "id": cell_id, "metadata": metadata, "source": cell.source}
    own: dict[str, Any] = {"status": result.status.value, "location": cell.location}
    if result.status not in NOT_EXECUTED:
        own["duration"] = round(result.duration, 6)
    if result.reason:
        own["reason"] = result.reason
    if result.diff:
        own["diff"] = result.diff
    metadata["sandrun"] = own
    return {
        "cell_type": "code",
        "execution_count": count,
        "id": cell_id,
        "metadata": metadata,
        "outputs": cell_outputs(result, count) if result.status not in NOT_EXECUTED else [],
        "source": cell.source,
    }


def _cells(t: Transcript, heading: bool) -> list[dict[str, Any]]:
    cells = []
    if heading:
        title = f"# {t.recipe.name or t.recipe.path}: {t.status.value}"
        cells.append({"cell_type": "markdown", "id": "", "metadata": {}, "source": title})
    count = 0
    for result in t.results:
        executed = result.cell.kind is CellKind.CODE and result.status not in NOT_EXECUTED
        count += executed
        cells.append(_cell(result, count if executed else None))
    return cells


def render_ipynb(transcripts: Sequence[Transcript]) -> str:
    """The transcripts as one executed notebook (nbformat 4.5), as JSON text ending with a newline."""
    several = len(transcripts) != 1
    cells = [cell for t in transcripts for cell in _cells(t, several)]
    for number, cell in enumerate(cells, 1):
        cell["id"] = f"cell-{number}"  # unique over the whole notebook, as nbformat requires
    first = transcripts[0] if transcripts else None
    python = first.python_version if first and first.python_version else ""
    runs = [
        {"recipe": t.recipe.path, "status": t.status.value, "backend": t.backend, "started_at": t.started_at}
        for t in transcripts
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": python},
            "sandrun": {"runs": runs},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

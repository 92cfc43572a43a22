"""`--update` for notebooks: write a run's fresh outputs into the `.ipynb` it ran, and change nothing else.

Each code cell that ran gets the outputs it produced (streams, displays with their images, its value, its
error) and its execution count, in nbformat's shape with multiline text as lists of lines, as Jupyter
writes it; a cell whose stored outputs already say the same (text joined, consecutive streams merged) is
left byte for byte (an error's traceback is not compared: it names file lines, which move when outputs
grow). The rest of the file (metadata, cell ids, key order, indentation) stays as it was, so
a `git diff` shows outputs only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandrun.errors import SandrunError
from sandrun.model import CellKind, Transcript
from sandrun.reports.ipynb import NOT_EXECUTED, cell_outputs

_INDENT = re.compile(r"\A\{\r?\n( +)\"")


def updated_notebook(text: str, transcript: Transcript) -> tuple[str, list[tuple[int, str, str]]]:
    """The notebook text with fresh outputs, and per changed cell (index, old text, new text) where the
    texts are what a person reads of the outputs (stream text and text/plain)."""
    nb = json.loads(text)
    cells = nb.get("cells")
    if not isinstance(cells, list) or len(cells) != len(transcript.recipe.cells):
        raise SandrunError("the notebook's cells are not those that ran")
    changed = []
    count = 0
    for result in transcript.results:
        if result.cell.kind is not CellKind.CODE or result.status in NOT_EXECUTED:
            continue
        count += 1
        cell = cells[result.cell.index]
        fresh = [_jupyter_lines(output) for output in cell_outputs(result, count)]
        old = cell.get("outputs", [])
        if _normal(old) == _normal(fresh):
            continue
        cell["outputs"] = fresh
        cell["execution_count"] = count
        changed.append((result.cell.index, _readable(old), _readable(fresh)))
    if not changed:
        return text, []
    match = _INDENT.match(text)
    indent = len(match.group(1)) if match else None
    new = json.dumps(nb, indent=indent, ensure_ascii=False)  # as nbformat writes
    return new + ("\n" if text.endswith("\n") else ""), changed


def _jupyter_lines(output: dict[str, Any]) -> dict[str, Any]:
    """Multiline text as a list of lines (nbformat's writer does this, so Jupyter's diffs stay small)."""
    if "text" in output:
        output["text"] = _split(output["text"])
    if "data" in output:
        output["data"] = {
            mime: _split(value) if isinstance(value, str) and _is_text(mime) else value
            for mime, value in output["data"].items()
        }
    return output


def _is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime == "image/svg+xml"


def _split(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _joined(value: object) -> object:
    return "".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value


def _normal(outputs: object) -> list[dict[str, object]]:
    """Outputs compared by meaning: text joined, consecutive streams of one name merged, counts ignored."""
    normal: list[dict[str, object]] = []
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            return [{"invalid": output}]
        ignored = ("execution_count", "transient", "traceback")  # a traceback names lines that move
        item = {k: v for k, v in output.items() if k not in ignored}
        if "text" in item:
            item["text"] = _joined(item["text"])
        if isinstance(item.get("data"), dict):
            item["data"] = {mime: _joined(value) for mime, value in item["data"].items()}
        last = normal[-1] if normal else None
        stream = item.get("output_type") == "stream"
        if last and stream and last.get("output_type") == "stream" and item.get("name") == last.get("name"):
            last["text"] = str(last["text"]) + str(item.get("text", ""))
            continue
        normal.append(item)
    return normal


def _readable(outputs: object) -> str:
    """What a person reads of some outputs: stream text and text/plain, in order."""
    parts = []
    for item in _normal(outputs):
        if "text" in item:
            parts.append(str(item["text"]))
        elif isinstance(data := item.get("data"), dict):
            parts.append(str(data.get("text/plain", "")) + "\n")
        elif "ename" in item:
            parts.append(f"{item['ename']}: {item.get('evalue', '')}\n")
    return "".join(parts)

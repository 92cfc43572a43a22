"""Reader for Jupyter notebooks (`.ipynb`, nbformat 4), read with plain `json`.

Code cells run in order; markdown cells are prose; raw cells are kept but never run. Cell tags:
`raises-exception` (the cell must raise), `skip-execution` and `skip` (not run). Settings come from the
notebook's metadata under `sandrun` (the keys of a YAML recipe: `name`, `description`, `timeout`, `env`,
`network`, `python`, `packages`, `files`, `backend`; and `check_outputs`, `match`). Timeouts: a cell's
`metadata.sandrun.timeout`; for the notebook, `metadata.sandrun.timeout` or nbmake's
`metadata.execution.timeout`.

Where a cell is: notebooks written by Jupyter put each source line on a line of its own in the JSON, so
a cell's `line` is the file line of its first source line and tracebacks point into the `.ipynb` itself.
A notebook written otherwise (minified) gets line 1 for every cell.

IPython syntax: a `%matplotlib` line is left out (figures are captured anyway); any other line magic,
cell magic or `!shell` line is a recipe error at `file:line` naming the cell (exit 2), since sandrun runs
plain Python.

Stored outputs (opt-in: `check_outputs`, or `--check-outputs`): each executed code cell's stored stdout
`stream` outputs become its expected stdout, and the text/plain of its `execute_result` its expected value,
compared with the recipe's match mode (ellipsis by default).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandrun.errors import RecipeError
from sandrun.expect import default_match
from sandrun.model import (
    ANY_EXCEPTION,
    MATCH_MODES,
    MAX_TIMEOUT,
    Cell,
    CellKind,
    Expectation,
    ExpectedText,
    MatchMode,
    Recipe,
)
from sandrun.readers import Format

SETTINGS = (
    "name", "description", "timeout", "env", "network", "python", "packages", "files", "backend",
    "check_outputs", "match",
)  # fmt: skip
SKIP_TAGS = ("skip", "skip-execution")
_MAGIC = re.compile(r"^\s*(%%?|!)\s*(\w*)")
_KINDS = {"code": CellKind.CODE, "markdown": CellKind.MARKDOWN, "raw": CellKind.RAW}


def parse(text: str, path: str, sha256: str, check_outputs: bool = False) -> Recipe:
    """Read a notebook. Raises `RecipeError` for invalid JSON, an unknown nbformat, bad settings or IPython
    syntax; `check_outputs` turns stored outputs into expectations (as `sandrun.check_outputs` does)."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecipeError(path, exc.lineno, f"invalid notebook JSON: {exc.msg}") from None
    except RecursionError:
        raise RecipeError(path, 1, "invalid notebook JSON: nested too deeply") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise RecipeError(path, 1, "not a Jupyter notebook: no `cells` list at the top level")
    if nb.get("nbformat") != 4:
        raise RecipeError(
            path, 1, f"nbformat {nb.get('nbformat')!r} is not supported", hint="save it as nbformat 4"
        )
    metadata = _object(nb.get("metadata"))
    settings = _settings(metadata.get("sandrun", {}), path, _line_of(text, '"sandrun"'))
    execution = metadata.get("execution")
    if "timeout" not in settings and isinstance(execution, dict) and "timeout" in execution:
        where = _line_of(text, '"execution"')
        settings["timeout"] = _seconds(execution["timeout"], path, where, "metadata.execution.timeout")
    check = check_outputs or bool(settings.get("check_outputs"))
    mode = MatchMode(settings["match"]) if "match" in settings else default_match()
    lines = _source_lines(text, len(nb["cells"]))
    cells = [_cell(raw, i, lines[i], path, check, mode) for i, raw in enumerate(nb["cells"])]
    if not any(c.kind is CellKind.CODE and c.source.strip() for c in cells):
        raise RecipeError(path, 1, "no code cells in this notebook")
    return Recipe(
        path=path,
        sha256=sha256,
        format="ipynb",
        cells=tuple(cells),
        name=settings.get("name"),
        description=settings.get("description"),
        timeout=settings.get("timeout"),
        env=settings.get("env", {}),
        network=settings.get("network"),
        python=settings.get("python"),
        files=tuple(settings.get("files", ())),
        backend=settings.get("backend"),
        packages=tuple(settings.get("packages", ())),
    )


FORMAT = Format(parse)
"""Notebooks: stored outputs are rewritten whole, by `sandrun.notebook_update`, not in place."""


def _cell(raw: object, index: int, line: int, path: str, check: bool, mode: MatchMode) -> Cell:
    where = f"cell {index + 1}"
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("cell_type"), str)
        or raw["cell_type"] not in _KINDS
    ):
        raise RecipeError(path, line, f"{where} is not a code, markdown or raw cell")
    kind = _KINDS[raw["cell_type"]]
    source = _text(raw.get("source", ""), path, line, f"{where} source")
    metadata = _object(raw.get("metadata"))
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RecipeError(path, line, f"{where}: metadata.tags must be a list of strings")
    cell = Cell(index, source, path, line, kind=kind, tags=tuple(tags))
    if kind is not CellKind.CODE:
        return cell
    source = _without_magics(source, path, line, where)
    own = metadata.get("sandrun", {})
    timeout = own.get("timeout") if isinstance(own, dict) else None
    expect = Expectation(error=ANY_EXCEPTION if "raises-exception" in tags else None)
    if check and raw.get("execution_count") is not None:
        expect = _stored_expectation(raw.get("outputs", []), expect, path, line, where, mode)
    return Cell(
        index,
        source,
        path,
        line,
        kind=kind,
        tags=tuple(tags),
        timeout=None if timeout is None else _seconds(timeout, path, line, f"{where} timeout"),
        skip=any(tag in SKIP_TAGS for tag in tags),
        expect=expect,
        skip_reason=next((f"the notebook cell's `{tag}` tag" for tag in tags if tag in SKIP_TAGS), None),
    )


def _without_magics(source: str, path: str, line: int, where: str) -> str:
    """The source with `%matplotlib` lines blanked (line numbers kept); other IPython syntax refused."""
    if "%" not in source and "!" not in source:
        return source
    try:
        compile(source, path, "exec", dont_inherit=True)
        return source  # plain Python: a `%` or `!` inside it is an operator or in a string
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass  # the driver says what is wrong with code that is not Python: here, only IPython syntax
    lines = source.split("\n")
    for n, text in enumerate(lines):
        match = _MAGIC.match(text)
        if match is None or (match.group(1) == "!" and text.lstrip().startswith("!=")):
            continue
        if match.group(1) == "%" and match.group(2) == "matplotlib":
            lines[n] = ""
            continue
        magic = f"the IPython magic {match.group(1)}{match.group(2)}"
        what = "a shell command" if match.group(1) == "!" else magic
        raise RecipeError(
            path,
            line + n,
            f"{where} uses {what}, which sandrun does not run (it runs plain Python)",
            hint="use subprocess.run([...]) for shell commands, or plain Python for the magic",
        )
    return "\n".join(lines)


def _stored_expectation(
    outputs: object, expect: Expectation, path: str, line: int, where: str, mode: MatchMode
) -> Expectation:
    """Expected stdout and value from a cell's stored `stream` and `execute_result` outputs."""
    if not isinstance(outputs, list):
        raise RecipeError(path, line, f"{where}: outputs must be a list")
    stdout, value = [], None
    for output in outputs:
        if not isinstance(output, dict):
            raise RecipeError(path, line, f"{where}: an output is not an object")
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            stdout.append(_text(output.get("text", ""), path, line, f"{where} stored output"))
        elif output.get("output_type") == "execute_result":
            data = _object(output.get("data"))
            if "text/plain" in data:
                value = _text(data["text/plain"], path, line, f"{where} stored value")
    return Expectation(
        error=expect.error,
        stdout=ExpectedText("".join(stdout), mode, line),
        value=ExpectedText(value, mode, line) if value is not None else None,
    )


def _object(value: object) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (metadata that is not ours to judge)."""
    return value if isinstance(value, dict) else {}


def _text(value: object, path: str, line: int, what: str) -> str:
    """nbformat's multiline string: a string, or a list of strings to join."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    raise RecipeError(path, line, f"{what} must be a string or a list of strings")


def _seconds(value: object, path: str, line: int, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
        raise RecipeError(path, line, f"{what} must be a number of seconds above 0, at most {MAX_TIMEOUT:g}")
    return float(value)


def _settings(raw: object, path: str, line: int) -> dict[str, Any]:
    """The `sandrun` metadata, each value checked as a YAML recipe's setting is."""
    if not isinstance(raw, dict):
        raise RecipeError(path, line, "metadata.sandrun must be an object of settings")
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        hint = f"use {', '.join(SETTINGS)}"
        raise RecipeError(path, line, f"unknown setting {unknown[0]!r} in metadata.sandrun", hint=hint)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        what = f"metadata.sandrun.{key}"
        if key == "timeout":
            out[key] = _seconds(value, path, line, what)
        elif key in ("network", "check_outputs"):
            if not isinstance(value, bool):
                raise RecipeError(path, line, f"{what} must be true or false")
            out[key] = value
        elif key in ("packages", "files"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise RecipeError(path, line, f"{what} must be a list of strings")
            if key == "packages" and any(v.strip().startswith("-") for v in value):
                raise RecipeError(path, line, f"{what}: pip options are not taken, only requirements")
            if key == "files":
                _check_files(value, path, line)
            out[key] = [v.strip() for v in value]
        elif key == "env":
            if not isinstance(value, dict) or not all(
                isinstance(v, (str, int, float)) and k and "=" not in k and "\0" not in k + str(v)
                for k, v in value.items()
            ):
                raise RecipeError(path, line, f"{what} must be an object of NAME: text")
            out[key] = {k: str(v) for k, v in value.items()}
        elif key == "match":
            if value not in MATCH_MODES:
                raise RecipeError(path, line, f"{what} must be one of {', '.join(MATCH_MODES)}")
            out[key] = value
        elif not isinstance(value, str):
            raise RecipeError(path, line, f"{what} must be a string")
        else:
            out[key] = value
    return out


def _check_files(names: list[str], path: str, line: int) -> None:
    """Each a relative path to an existing file beside the notebook, not behind a link out of it."""
    from pathlib import Path, PurePosixPath

    base = Path(path).parent
    for name in names:
        relative = PurePosixPath(name)
        target = base / relative
        if relative.is_absolute() or ".." in relative.parts or not target.is_file():
            raise RecipeError(path, line, f"file {name!r} must be an existing file beside the notebook")
        if target.is_symlink() or not target.resolve().is_relative_to(base.resolve()):
            raise RecipeError(path, line, f"file {name!r} is a symbolic link, or lies behind one")


def _line_of(text: str, needle: str) -> int:
    """The line where `needle` first appears (1 when it does not)."""
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _source_lines(text: str, count: int) -> list[int]:
    """Per cell, the file line of its first source line; all 1 when the layout is not Jupyter's."""
    indent = re.findall(r'^( *)"cell_type": ', text, re.MULTILINE)
    if len(indent) != count or len(set(indent)) != 1:
        return [1] * count
    found = [m for m in re.finditer(rf'^{indent[0]}"source": (\[?)', text, re.MULTILINE)]
    if len(found) != count:
        return [1] * count
    lines = []
    for m in found:
        line = text.count("\n", 0, m.start()) + 1
        lines.append(line + 1 if m.group(1) and not text.startswith("[]", m.end() - 1) else line)
    return lines

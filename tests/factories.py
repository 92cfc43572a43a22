"""Builders shared by the test modules: transcripts for the report tests, a hand-made wheel, sample data.

Test modules import from here, never from one another.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sandrun.model import (
    Cell,
    CellError,
    CellKind,
    CellResult,
    CellStatus,
    Expectation,
    OutputChunk,
    Recipe,
    RunStatus,
    Transcript,
)

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(
    not HAS_MATPLOTLIB, reason="matplotlib is not installed in sandrun's venv"
)
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

PATH = "recipes/demo.py"
TRICKY = "before\n```python\nnot the end\n````\nbad byte: \ufffd, snowman: \u2603\n"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    f'  File "{PATH}", line 12, in <module>\n'
    "    1 / 0\n"
    "ZeroDivisionError: division by zero\n"
)


def make_transcript(**changes: Any) -> Transcript:
    """A realistic failed run covering every status and cell kind."""
    specs: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"source": "# Intro\n\nSome *prose* here.\n", "kind": CellKind.MARKDOWN},
            {"status": CellStatus.SKIPPED},
        ),
        (
            {"source": "print('hello')\nx = 41\nx + 1", "name": "greet", "tags": ("setup",)},
            {"outputs": (OutputChunk("stdout", "hello\n"),), "value": "42", "peak_memory": 31_457_280},
        ),
        (
            {"source": "import sys\nprint('a')\nprint('warn', file=sys.stderr)\nprint('b')"},
            {
                "outputs": (
                    OutputChunk("stdout", "a\n"),
                    OutputChunk("stderr", "warn\n"),
                    OutputChunk("stdout", "b\n"),
                )
            },
        ),
        ({"source": "print(TRICKY)"}, {"outputs": (OutputChunk("stdout", TRICKY),)}),
        (
            {"source": "1 / 0", "expect": Expectation(error="ZeroDivisionError")},
            {"error": CellError("ZeroDivisionError", "division by zero", TRACEBACK, 12)},
        ),
        (
            {"source": "print('x')\n1 / 0", "name": "boom"},
            {
                "status": CellStatus.FAILED,
                "outputs": (OutputChunk("stdout", "x\n"),),
                "error": CellError("ZeroDivisionError", "division by zero", TRACEBACK, 12),
                "reason": "unexpected ZeroDivisionError",
            },
        ),
        (
            {"source": "while True:\n    pass", "timeout": 2.0},
            {"status": CellStatus.TIMEOUT, "reason": "ran past its 2 s time limit", "duration": 2.01},
        ),
        ({"source": "raw text\n", "kind": CellKind.RAW}, {"status": CellStatus.SKIPPED, "duration": 0.0}),
        ({"source": "print('never')", "skip": True}, {"status": CellStatus.SKIPPED, "duration": 0.0}),
        (
            {"source": "print('later')"},
            {"status": CellStatus.NOT_RUN, "reason": "not run: cell 6 failed", "duration": 0.0},
        ),
    ]
    results, line = [], 1
    for index, (cell_kw, result_kw) in enumerate(specs):
        cell = Cell(index=index, path=PATH, line=line, **cell_kw)
        line += cell.source.count("\n") + 2
        result_kw = {"status": CellStatus.PASSED, "duration": 0.125 * (index + 1), **result_kw}
        results.append(CellResult(cell=cell, **result_kw))
    recipe = Recipe(
        path=PATH,
        sha256=hashlib.sha256(b"demo").hexdigest(),
        format="percent",
        cells=tuple(r.cell for r in results),
        name="Demo recipe",
        description="Shows every kind of cell.\nSecond line.",
        timeout=30.0,
        env={"API_TOKEN": "s3cret-value"},
    )
    fields: dict[str, Any] = {
        "recipe": recipe,
        "backend": "process",
        "isolation": "none",
        "status": RunStatus.FAILED,
        "results": tuple(results),
        "started_at": "2025-01-02T03:04:05.678901+00:00",
        "duration": 3.5,
        "tool_version": "0.1.0",
        "python_version": "3.11.7",
        "reason": None,
        "limits": {"timeout": 30.0, "max_output": 1048576},
    }
    fields.update(changes)
    return Transcript(**fields)


def without_env(t: Transcript) -> Transcript:
    return dataclasses.replace(t, recipe=dataclasses.replace(t.recipe, env={}))


DIFF = "--- expected stdout\n+++ actual stdout\n@@ -1 +1 @@\n-hello\n+goodbye\n"


def with_cells(*results: tuple[dict[str, Any], dict[str, Any]], **changes: Any) -> Transcript:
    """A transcript of `make_transcript` whose results are the given (cell keywords, result keywords)."""
    path = changes["recipe"].path if "recipe" in changes else PATH
    built = []
    for index, (cell_kw, result_kw) in enumerate(results):
        cell = Cell(**{"index": index, "source": "pass", "path": path, "line": 1 + 3 * index, **cell_kw})
        built.append(CellResult(cell=cell, **{"status": CellStatus.PASSED, **result_kw}))
    return make_transcript(results=tuple(built), **changes)


DEMO = "sandrun_demo"


def make_wheel(folder: Path, name: str = DEMO, version: str = "0.1") -> Path:
    """A pure-Python wheel with one module (VALUE = 42) and one console script, written by hand."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 42\n\n\ndef main():\n    print('demo', VALUE)\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": f"[console_scripts]\nsandrun-demo = {name}:main\n",
    }
    record = []
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            archive.writestr(path, data)
            record.append(f"{path},sha256={digest},{len(data)}")
        archive.writestr(f"{dist_info}/RECORD", "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n")
    return wheel


def run_json(doc: str | Path, *extra: str, cwd: Path | None = None) -> tuple[int, dict[str, Any], str]:
    """`sandrun run doc` (from `cwd`) in the real local sandbox, with a JSON transcript on stdout: the exit
    code, the transcript ({} when none was printed) and stderr."""
    command = [sys.executable, "-m", "sandrun", "run", str(doc), "--backend", "local", "--format", "json"]
    done = subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr

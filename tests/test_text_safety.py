"""Text is safe everywhere: a lone surrogate in a recipe or in a forged protocol line, or a field of the wrong
type sent from inside the sandbox, never crashes sandrun and never costs a report.

A cell runs in the driver's own process, so it can write protocol lines of its own (here it finds the
driver's `Emitter` through the garbage collector and writes raw JSON on its descriptor). Such a line can
lie about the cell (that is not promised against), but it must not break the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sandrun.events import ProtocolViolation, done_fields, stream_fields
from sandrun.model import OutputChunk
from sandrun.reports import render_all
from tests.factories import make_transcript

FORGE = """\
import gc, os
emitter = next(o for o in gc.get_objects() if type(o).__name__ == "Emitter")
capture = next(o for o in gc.get_objects() if type(o).__name__ == "Capture")
def forge(line):
    with emitter.lock:
        os.write(emitter.fd, line.replace(b"ID", b"%d" % capture.cell_id) + b"\\n")
"""


def sandrun(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`sandrun ARGS` as a process, on the process backend."""
    argv = [sys.executable, "-m", "sandrun", *map(str, args)]
    env = {**os.environ, "SANDRUN_BACKEND": "process", "GITHUB_ACTIONS": "", "SANDRUN_DEBUG": ""}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def yaml_cell(code: str) -> str:
    """A YAML list item holding `code` as a block scalar."""
    return "  - |\n" + "".join(f"    {line}\n" for line in code.splitlines())


def test_a_surrogate_in_a_yaml_recipe_costs_no_report(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").write_text('name: odd\ncells:\n  - "x = 1  # \\ud800"\n')  # YAML's escape
    (tmp_path / "fine.yaml").write_text("name: fine\ncells:\n  - print('hi')\n")
    reports = ["--report", "out.json", "--report", "out.md", "--report", "out.xml"]
    result = sandrun("run", "odd.yaml", "fine.yaml", "-q", "-j", "1", *reports, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the odd cell failed (Python cannot compile it)
    assert "internal error" not in result.stderr and "Traceback (most recent" not in result.stderr
    odd, fine = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert odd["cells"][0]["source"] == "x = 1  # \ud800"  # JSON's escape: the string reads back exactly
    assert fine["status"] == "passed"
    assert "\\ud800" in (tmp_path / "out.md").read_text(encoding="utf-8")  # shown as its escape
    assert "fine" in (tmp_path / "out.xml").read_text(encoding="utf-8")


def test_forged_events_end_their_recipe_only(tmp_path: Path) -> None:
    forged = (
        "name: forged\ncells:\n"
        + yaml_cell(FORGE + 'forge(b\'{"ev": "stream", "id": ID, "name": "stdout", "text": "\\\\ud800"}\')')
        + yaml_cell(FORGE + 'forge(b\'{"ev": "done", "id": ID, "status": "ok", "peak_memory": "lots"}\')')
        + "  - print('never')\n"
    )
    (tmp_path / "forged.yaml").write_text(forged)
    (tmp_path / "fine.yaml").write_text("name: fine\ncells:\n  - print('hi')\n")
    reports = ["--report", "out.json", "--report", "out.md", "--report", "out.xml", "--keep-going"]
    result = sandrun("run", "forged.yaml", "fine.yaml", "-q", *reports, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    forged_run, fine_run = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert fine_run["status"] == "passed"
    assert forged_run["status"] == "error"
    first, second, third = forged_run["cells"]
    assert first["stdout"] == "\\ud800"  # the forged surrogate, written as its escape
    assert second["status"] == "error"
    assert "malformed 'done' event: peak_memory is str, not a non-negative integer" in second["reason"]
    assert third["status"] == "not_run"
    assert "peak_memory is str" in (tmp_path / "out.md").read_text(encoding="utf-8")
    assert "forged" in (tmp_path / "out.xml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "event",
    [
        {"status": "ok", "peak_memory": "lots"},
        {"status": "ok", "peak_memory": True},
        {"status": "ok", "peak_memory": -1},
        {"status": "ok", "value": 42},
        {"status": "maybe"},
        {"status": 1},
        {"status": "error", "error": "boom"},
        {"status": "error", "error": {"type": 3}},
        {"status": "error", "error": {"type": "E", "line": "7"}},
        {"status": "error", "error": {"type": "E", "types": "E"}},
        {"status": "ok", "truncated": {"stdout": "many"}},
        {"status": "ok", "truncated": {"fd3": 1}},
        {"status": "ok", "truncated": [1]},
    ],
)
def test_a_done_event_with_a_field_of_the_wrong_type_is_a_protocol_violation(event: dict[str, Any]) -> None:
    with pytest.raises(ProtocolViolation, match="the sandbox sent"):
        done_fields(event)


@pytest.mark.parametrize("event", [{"name": "stdout", "text": 3}, {"name": ["stdout"]}, {"name": "fd9"}])
def test_a_stream_event_with_a_wrong_field_is_a_protocol_violation(event: dict[str, Any]) -> None:
    with pytest.raises(ProtocolViolation, match="the sandbox sent"):
        stream_fields(event)


def test_a_good_done_event_is_read_whole() -> None:
    done = done_fields(
        {
            "status": "error",
            "value": None,
            "peak_memory": 1024,
            "error": {"type": "E", "message": "m\ud800", "traceback": "t", "line": 3, "types": ["E", "X"]},
            "truncated": {"stderr": 5},
        }
    )
    assert (done.status, done.peak_memory, done.truncated) == ("error", 1024, {"stderr": 5})
    assert done.error is not None and done.error.message == "m\\ud800" and done.error.line == 3
    assert done.error_types == ("E", "X")


@pytest.mark.parametrize("fmt", ["json", "md", "junit"])
def test_every_report_format_can_be_written_whatever_the_text(fmt: str) -> None:
    base = make_transcript()
    odd = replace(base.results[1], outputs=(OutputChunk("stdout", "a\ud800b\udfffc"),))
    transcript = replace(base, results=(odd,))
    text = render_all([transcript], fmt)
    text.encode("utf-8")  # would raise UnicodeEncodeError for a lone surrogate
    assert "\\ud800" in text

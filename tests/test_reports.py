"""Reports: the JSON transcript against its schema, the Markdown page, formats and atomic writes."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sandrun.model import (
    TRANSCRIPT_SCHEMA,
    Cell,
    CellKind,
    CellResult,
    CellStatus,
    Condition,
    Expectation,
    ExpectedText,
    OutputChunk,
    RunStatus,
    Transcript,
    merged_runs,
)
from sandrun.reports import format_for_path, render, write_report
from sandrun.reports.ipynb import cell_outputs
from sandrun.reports.json_report import load_schema, render_json, transcript_from_dict, transcript_to_dict
from sandrun.reports.markdown import fence, render_markdown
from tests.factories import PATH, TRACEBACK, TRICKY, make_transcript, with_cells, without_env


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --- JSON ---------------------------------------------------------------------------------------------


def test_schema_identifies_itself() -> None:
    schema = load_schema()
    assert TRANSCRIPT_SCHEMA in schema["$id"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_json_validates_against_schema(validator: Draft202012Validator) -> None:
    data = json.loads(render_json(make_transcript()))
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == []


def test_json_text_is_indented_utf8_with_trailing_newline() -> None:
    text = render_json(make_transcript())
    assert text.endswith("}\n")
    assert text.startswith('{\n  "schema": "sandrun.transcript/4",')
    assert "\ufffd" in text and "\u2603" in text and "\\u" not in text


def test_json_fields() -> None:
    data = transcript_to_dict(make_transcript())
    assert data["tool"] == {"name": "sandrun", "version": "0.1.0"}
    assert data["backend"] == {"name": "process", "isolation": "none"}
    assert data["summary"] == {
        "passed": 4, "failed": 1, "error": 0, "timeout": 1, "skipped": 3, "not_run": 1, "found_not_run": 0,
        "total": 10,
    }  # fmt: skip
    mixed = data["cells"][2]
    assert [o["stream"] for o in mixed["outputs"]] == ["stdout", "stderr", "stdout"]
    assert (mixed["stdout"], mixed["stderr"]) == ("a\nb\n", "warn\n")
    assert data["cells"][4]["expect"] == {"error": "ZeroDivisionError", "error_message": None}
    assert data["cells"][5]["error"]["line"] == 12
    assert data["cells"][9]["status"] == "not_run"


def test_json_never_contains_env() -> None:
    text = render_json(make_transcript())
    assert "API_TOKEN" not in text and "s3cret-value" not in text


def test_round_trip_through_json() -> None:
    t = make_transcript()
    back = transcript_from_dict(json.loads(render_json(t)))
    assert back == without_env(t)
    assert back.recipe.env == {}
    assert render_json(back) == render_json(t)
    assert render_markdown(back) == render_markdown(t)


def test_the_round_trip_loses_only_what_the_module_says() -> None:
    t = make_transcript()
    written = ExpectedText("hello", line=3, span=(10, 15), doctest=frozenset({"NUMBER"}))
    cell = dataclasses.replace(t.results[1].cell, unsupported="why not", expect=Expectation(stdout=written))
    results = (t.results[0], dataclasses.replace(t.results[1], cell=cell), *t.results[2:])
    settings = {"network": True, "python": "python3.12", "files": ("data.txt",), "backend": "local"}
    recipe = dataclasses.replace(
        t.recipe, cells=tuple(r.cell for r in results), packages=("pyyaml",), warnings=("w",), **settings
    )
    t = dataclasses.replace(t, recipe=recipe, results=results)
    back = transcript_from_dict(json.loads(render_json(t)))
    lost = dataclasses.replace(cell, expect=Expectation(stdout=ExpectedText("hello", line=3)))
    results = (t.results[0], dataclasses.replace(t.results[1], cell=lost), *t.results[2:])
    cells = tuple(r.cell for r in results)
    assert back == dataclasses.replace(
        t, results=results, recipe=dataclasses.replace(recipe, cells=cells, **EMPTY_SETTINGS)
    )


EMPTY_SETTINGS: dict[str, Any] = {
    "env": {}, "network": None, "python": None, "files": (), "backend": None, "packages": ()
}  # fmt: skip


def test_what_mismatched_round_trips_and_may_be_absent(validator: Draft202012Validator) -> None:
    t = make_transcript()
    reason = "stdout did not match"
    boom = dataclasses.replace(t.results[5], error=None, reason=reason, mismatch="stdout", mismatch_line=9)
    t = dataclasses.replace(t, results=(*t.results[:5], boom, *t.results[6:]))
    data = json.loads(render_json(t))
    assert validator.is_valid(data) and data["cells"][5]["mismatch"] == "stdout"
    assert data["cells"][5]["mismatch_line"] == 9
    back = transcript_from_dict(data).results[5]
    assert (back.mismatch, back.mismatch_line) == ("stdout", 9)
    del data["cells"][5]["mismatch"], data["cells"][5]["mismatch_line"]  # written before the fields existed
    back = transcript_from_dict(data).results[5]
    assert validator.is_valid(data) and (back.mismatch, back.mismatch_line) == (None, None)
    data["cells"][5]["mismatch"] = "stdout did not match"
    assert not validator.is_valid(data)
    data["cells"][5].update(mismatch="stdout", mismatch_line="9")
    assert not validator.is_valid(data)


def test_a_transcript_says_whether_it_isolated_anything() -> None:
    assert make_transcript().isolates_nothing  # the process backend
    assert not make_transcript(isolation="bubblewrap: namespaces").isolates_nothing


def test_round_trip_of_a_run_that_never_started(validator: Draft202012Validator) -> None:
    t = make_transcript(
        status=RunStatus.ERROR, results=(), python_version=None, reason="sandbox did not start", limits={}
    )
    t = dataclasses.replace(t, recipe=dataclasses.replace(t.recipe, cells=(), name=None, description=None))
    data = json.loads(render_json(t))
    assert validator.is_valid(data)
    assert transcript_from_dict(data) == without_env(t)
    assert "sandbox did not start" in render_markdown(t)


def test_from_dict_rejects_other_documents() -> None:
    data = transcript_to_dict(make_transcript())
    data["schema"] = "sandrun.transcript/5"
    with pytest.raises(ValueError, match=r"sandrun\.transcript/4"):
        transcript_from_dict(data)


def doc_transcript() -> Transcript:
    """A run of a document with a reader's warning, a block found but not run, one skipped by the document
    and one with a `:skipif:` condition."""
    t = make_transcript()
    cells = (
        Cell(0, ">>> 1\n", PATH, 3, skip=True, unsupported="the language 'pycon3' is not one sandrun runs"),
        Cell(1, "x = 1\n", PATH, 7, skip=True, skip_reason="`:options: +SKIP` of its `.. testcode::`"),
        Cell(2, "y = 2\n", PATH, 12, skip_if=Condition("sys.platform == 'win32'", 10)),
    )
    results = (
        CellResult(cells[0], CellStatus.SKIPPED, reason=cells[0].why_skipped),
        CellResult(cells[1], CellStatus.SKIPPED, reason=cells[1].why_skipped),
        CellResult(cells[2], CellStatus.PASSED, duration=0.5),
    )
    warning = f"{PATH}:1: option 'slip' is not sandrun's and is ignored; did you mean 'skip'?"
    recipe = dataclasses.replace(t.recipe, format="rst", cells=cells, warnings=(warning,))
    return dataclasses.replace(t, recipe=recipe, results=results, status=RunStatus.PASSED)


def test_version_3_carries_warnings_and_blocks_found_but_not_run(validator: Draft202012Validator) -> None:
    t = doc_transcript()
    data = json.loads(render_json(t))
    assert [e.message for e in validator.iter_errors(data)] == []
    assert data["recipe"]["warnings"] == list(t.recipe.warnings)
    assert data["summary"]["found_not_run"] == 1 and data["summary"]["skipped"] == 2
    found, skipped, conditional = data["cells"]
    assert found["unsupported"] == found["reason"] == "the language 'pycon3' is not one sandrun runs"
    assert (skipped["unsupported"], skipped["skip_reason"]) == (
        None,
        "`:options: +SKIP` of its `.. testcode::`",
    )
    assert conditional["skip_if"] == {"text": "sys.platform == 'win32'", "line": 10}
    assert transcript_from_dict(data) == without_env(t)


def test_a_version_2_transcript_is_still_read() -> None:
    data = json.loads(render_json(doc_transcript()))
    data["schema"] = "sandrun.transcript/2"
    del data["recipe"]["warnings"], data["summary"]["found_not_run"]
    for cell in data["cells"]:
        del cell["unsupported"], cell["skip_reason"], cell["skip_if"]
    back = transcript_from_dict(data)
    assert back.recipe.warnings == () and [r.cell.unsupported for r in back.results] == [None] * 3
    assert [r.reason for r in back.results] == [r.reason for r in doc_transcript().results]


def _drop(key: str):
    return lambda d: d.pop(key)


BREAKAGES = {
    "missing status": _drop("status"),
    "missing cells": _drop("cells"),
    "bad run status": lambda d: d.update(status="exploded"),
    "bad cell status": lambda d: d["cells"][1].update(status="ok"),
    "bad schema": lambda d: d.update(schema="sandrun.transcript/0"),
    "extra field": lambda d: d.update(surprise=True),
    "extra cell field": lambda d: d["cells"][0].update(colour="red"),
    "missing cell outputs": lambda d: d["cells"][1].pop("outputs"),
    "bad stream": lambda d: d["cells"][2]["outputs"][0].update(stream="stdin"),
    "negative duration": lambda d: d.update(duration=-1),
    "line zero": lambda d: d["cells"][0].update(line=0),
    "bad kind": lambda d: d["cells"][0].update(kind="notebook"),
    "error without traceback": lambda d: d["cells"][5]["error"].pop("traceback"),
    "summary missing count": lambda d: d["summary"].pop("not_run"),
    "bad started_at": lambda d: d.update(started_at="yesterday"),
    "tags not strings": lambda d: d["cells"][1].update(tags=[1]),
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_schema_rejects_broken_transcripts(validator: Draft202012Validator, breakage) -> None:
    data = transcript_to_dict(make_transcript())
    assert validator.is_valid(data)
    broken = copy.deepcopy(data)
    breakage(broken)
    assert not validator.is_valid(broken)


# --- Markdown -----------------------------------------------------------------------------------------

OPENER = re.compile(r"^ {0,3}(`{3,})([^`]*)$")


def parse_fences(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """CommonMark backtick fences: ([(info, content), ...], lines outside any fence). Fails if one is open."""
    blocks: list[tuple[str, str]] = []
    prose: list[str] = []
    opened: tuple[int, str, list[str]] | None = None
    for line in text.split("\n"):
        if opened is None:
            match = OPENER.match(line)
            if match:
                opened = (len(match.group(1)), match.group(2).strip(), [])
            else:
                prose.append(line)
        elif re.fullmatch(rf" {{0,3}}`{{{opened[0]},}} *", line):
            blocks.append((opened[1], "".join(f"{body}\n" for body in opened[2])))
            opened = None
        else:
            opened[2].append(line)
    assert opened is None, f"unclosed fence: {opened}"
    return blocks, prose


def test_markdown_title_and_header() -> None:
    md = render_markdown(make_transcript())
    assert md.splitlines()[0] == "# Demo recipe (`recipes/demo.py`): failed"
    for expected in (
        "process",
        "isolation: none",
        "3.11.7",
        "2025-01-02T03:04:05",
        "3.50 s",
        "`timeout=30.0`",
    ):
        assert expected in md
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_markdown_summary_table_comes_first_with_one_row_per_cell() -> None:
    t = make_transcript()
    md = render_markdown(t)
    rows = [line for line in md.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(t.results)
    assert rows[1] == "| 2 | greet | `recipes/demo.py:6` | passed | 250.0 ms |"
    assert rows[5].startswith("| 6 | boom | `recipes/demo.py:") and "| FAILED |" in rows[5]
    assert "| TIMEOUT |" in rows[6] and "| not run |" in rows[9]
    assert "(markdown)" in rows[0] and "(raw)" in rows[7]
    assert md.index("## Summary") < md.index("## Cells") < md.index("print('hello')")
    assert "10 cells: 4 passed, 1 failed, 1 timeout, 3 skipped, 1 not run." in md


def test_markdown_fences_are_unbroken() -> None:
    t = make_transcript()
    blocks, _ = parse_fences(render_markdown(t))
    python = [content for info, content in blocks if info == "python"]
    assert python == [r.cell.source + "\n" for r in t.results if r.cell.kind is CellKind.CODE]
    text = [content for info, content in blocks if info == "text"]
    assert TRICKY in text
    assert TRACEBACK in text
    assert "42\n" in text


def test_markdown_interleaves_and_marks_stderr() -> None:
    md = render_markdown(make_transcript())
    assert "```text\na\n```\n\n*stderr:*\n\n```text\nwarn\n```\n\n*stdout:*\n\n```text\nb\n```" in md


def test_markdown_shows_errors_and_reasons() -> None:
    md = render_markdown(make_transcript())
    assert "**Error (line 12):** `ZeroDivisionError: division by zero`" in md
    assert "**Reason:** unexpected ZeroDivisionError" in md
    assert "**Reason:** not run: cell 6 failed" in md
    assert "**Reason:** ran past its 2 s time limit" in md
    assert "expected to raise `ZeroDivisionError`" in md
    assert "**Raised, as expected (line 12):** `ZeroDivisionError: division by zero`" in md
    assert "**Reason:** the recipe marks it to be skipped" in md


def test_markdown_cells_are_prose_and_raw_cells_fenced() -> None:
    blocks, prose = parse_fences(render_markdown(make_transcript()))
    assert "# Intro" in prose and "Some *prose* here." in prose
    assert ("", "raw text\n") in blocks


def test_output_runs_join_one_streams_text_and_leave_out_empty_text() -> None:
    image = OutputChunk("display", "<Figure>", {"text/plain": "<Figure>"}, {})
    chunks = [
        OutputChunk("stdout", "a"),
        OutputChunk("stderr", ""),
        OutputChunk("stdout", "b"),
        image,
        OutputChunk("stdout", "c"),
        OutputChunk("stderr", "d"),
    ]
    assert merged_runs(chunks) == [
        OutputChunk("stdout", "ab"),
        image,
        OutputChunk("stdout", "c"),
        OutputChunk("stderr", "d"),
    ]


def test_the_markdown_page_and_the_notebook_show_the_same_runs_of_output() -> None:
    # An empty chunk between two of stdout: the page showed two fences, the notebook an empty stderr output
    outputs = (OutputChunk("stdout", "a\n"), OutputChunk("stderr", ""), OutputChunk("stdout", "b\n"))
    t = with_cells(({}, {"outputs": outputs}))
    blocks, _ = parse_fences(render_markdown(t))
    assert [content for info, content in blocks if info == "text"] == ["a\nb\n"]
    assert cell_outputs(t.results[0], 1) == [{"name": "stdout", "output_type": "stream", "text": "a\nb\n"}]


def test_markdown_cell_with_an_open_fence_cannot_swallow_the_page() -> None:
    t = make_transcript()
    first = t.results[0]
    broken = dataclasses.replace(
        first, cell=dataclasses.replace(first.cell, source="Look:\n\n```python\nx = 1\n")
    )
    md = render_markdown(dataclasses.replace(t, results=(broken, *t.results[1:])))
    blocks, _ = parse_fences(md)
    assert ("python", "x = 1\n") in blocks
    assert ("python", "print('hello')\nx = 41\nx + 1\n") in blocks


def test_fence_grows_past_the_longest_backtick_run_that_begins_a_line() -> None:
    assert fence("plain") == "```\nplain\n```"
    assert fence("````` b", "text").startswith("``````text\n")
    assert fence("a ````` b", "text") == "```text\na ````` b\n```"  # inside a line it closes nothing
    assert fence("x\r\ny\rz\n") == "```\nx\ny\nz\n```"


# --- Formats and files --------------------------------------------------------------------------------


def test_render_dispatches_on_format() -> None:
    t = make_transcript()
    assert render(t, "json") == render_json(t)
    assert render(t, "md") == render(t, "markdown") == render(t, "MD") == render_markdown(t)
    with pytest.raises(ValueError, match="json"):
        render(t, "pdf")


@pytest.mark.parametrize(
    ("path", "fmt"),
    [("out.json", "json"), ("a/b/out.md", "md"), ("OUT.MARKDOWN", "md"), (Path("x.y.JSON"), "json")],
)
def test_format_for_path(path: str | Path, fmt: str) -> None:
    assert format_for_path(path) == fmt


@pytest.mark.parametrize("path", ["report.txt", "report", "report.json.bak", ".md"])
def test_format_for_path_rejects_unknown_suffixes(path: str) -> None:
    with pytest.raises(ValueError) as info:
        format_for_path(path)
    message = str(info.value)
    assert path in message
    assert all(suffix in message for suffix in (".json", ".md", ".markdown"))


def test_write_report_creates_file(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    write_report(target, "caf\u00e9\r\nline\n")
    assert target.read_bytes() == "caf\u00e9\r\nline\n".encode()
    assert os.listdir(tmp_path) == ["report.md"]


def test_write_report_replaces_existing_file_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    before = target.stat().st_ino
    write_report(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != before  # replaced, not rewritten in place
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_report_failure_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def refuse(src: str, dst: str, **dir_fds: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_report_to_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope" / "report.md", "x")
    assert os.listdir(tmp_path) == []


def test_write_report_replaces_a_link_at_its_name_instead_of_writing_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("untouched")
    target = tmp_path / "report.json"
    target.symlink_to(elsewhere)
    write_report(target, "new")
    assert elsewhere.read_text() == "untouched"
    assert not target.is_symlink() and target.read_text() == "new"

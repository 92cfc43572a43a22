"""The JUnit XML report, read back with junitparser as CI tools would; and `render`/`render_all`."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from sandrun.model import CellError, Expectation, OutputChunk, RunStatus, Transcript
from sandrun.model import CellStatus as S
from sandrun.reports import format_for_path, render, render_all
from sandrun.reports.junit import classname, render_junit, xml_safe
from sandrun.reports.markdown import render_markdown
from tests.factories import DIFF, PATH, TRACEBACK, make_transcript, with_cells


def parse(text: str) -> JUnitXml:
    """The report as a CI tool reads it: bytes from a file (lxml refuses str with an encoding header)."""
    return JUnitXml.fromstring(text.encode("utf-8"))


def suites(text: str) -> list[TestSuite]:
    return list(parse(text))


def cases(t: Transcript) -> dict[str, TestCase]:
    (suite,) = suites(render_junit([t]))
    return {case.name: case for case in suite}


def test_document_has_declaration_and_trailing_newline() -> None:
    text = render_junit([make_transcript()])
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    assert text.endswith("</testsuites>\n")


def test_totals_on_root_and_suite_match_the_cases() -> None:
    xml = parse(render_junit([make_transcript()]))
    (suite,) = xml
    written = [(x.tests, x.failures, x.errors, x.skipped) for x in (xml, suite)]
    assert written == [(8, 2, 0, 2)] * 2
    assert xml.time == suite.time == 3.5
    xml.update_statistics()  # junitparser recounts from the test cases
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (8, 2, 0, 2)


def test_suite_name_timestamp_and_properties() -> None:
    (suite,) = suites(render_junit([make_transcript()]))
    assert suite.name == "Demo recipe"
    assert suite.timestamp == "2025-01-02T03:04:05.678901+00:00"
    assert suite.hostname is None
    props = {p.name: p.value for p in suite.properties()}
    facts = (props["backend"], props["isolation"], props["python_version"], props["recipe_sha256"])
    assert facts == ("process", "none", "3.11.7", make_transcript().recipe.sha256)
    assert "run_reason" not in props
    unnamed = make_transcript(recipe=dataclasses.replace(make_transcript().recipe, name=None))
    assert suites(render_junit([unnamed]))[0].name == PATH


def test_one_case_per_code_cell_with_readable_names() -> None:
    root = ET.fromstring(render_junit([make_transcript()]).encode())
    found = [(c.get("classname"), c.get("name"), c.get("file"), c.get("line")) for c in root.iter("testcase")]
    lines = {"greet": 6, "cell 3": 10, "cell 4": 15, "cell 5": 17, "boom": 19, "cell 7": 22, "cell 9": 28}
    lines["cell 10"] = 30
    assert found == [("recipes.demo", f"{k} ({PATH}:{v})", PATH, str(v)) for k, v in lines.items()]


CLASSNAMES = {"recipes/demo.py": "recipes.demo", "./a/b.yaml": "a.b", "x.py": "x", "/tmp/r.py": "tmp.r"}
CLASSNAMES.update({"../up/r.py": "up.r", "c:\\r\\t.py": "c:.r.t"})


@pytest.mark.parametrize(("path", "expected"), CLASSNAMES.items())
def test_classname(path: str, expected: str) -> None:
    assert classname(path) == expected


def test_passed_and_failed_cases() -> None:
    by_name = cases(make_transcript())
    greet = by_name[f"greet ({PATH}:6)"]
    assert greet.is_passed and greet.result == []
    (f,) = by_name[f"boom ({PATH}:19)"].result
    assert isinstance(f, Failure)
    assert (f.message, f.type, f.text) == ("unexpected ZeroDivisionError", "ZeroDivisionError", TRACEBACK)


def test_mismatch_failure_has_the_diff_a_blank_line_and_the_traceback() -> None:
    error = CellError("ValueError", "bad", TRACEBACK, 12)
    mismatch = {"status": S.FAILED, "reason": "stdout did not match", "diff": DIFF, "error": error}
    missing = {"status": S.FAILED, "reason": "expected ValueError to be raised, but the cell raised nothing"}
    t = with_cells(({"expect": Expectation(error="ValueError")}, mismatch), ({"name": "quiet"}, missing))
    first, second = (case.result[0] for case in cases(t).values())
    assert isinstance(first, Failure)
    assert (first.type, first.message) == ("OutputMismatch", "stdout did not match")
    assert first.text == DIFF + "\n" + TRACEBACK
    assert (second.type, second.text) == ("ExpectationFailed", second.message + "\n")


def test_timeout_error_and_skips() -> None:
    died = CellError("SandboxDied", "killed by signal 9", "")
    t = with_cells(
        ({}, {"status": S.TIMEOUT, "reason": "ran past its 2 s time limit", "duration": 2.0}),
        ({}, {"status": S.ERROR, "reason": "the sandbox died: killed", "error": died}),
        ({"skip": True}, {"status": S.SKIPPED, "reason": "skip: true in the recipe"}),
        ({}, {"status": S.NOT_RUN, "reason": "not run: cell 2 errored"}),
        status=RunStatus.ERROR,
        reason="the sandbox stopped",
    )
    results = [case.result[0] for case in cases(t).values()]
    assert [type(r) for r in results] == [Failure, Error, Skipped, Skipped]
    assert (results[0].type, results[0].message) == ("timeout", "ran past its 2 s time limit")
    assert (results[1].type, results[1].message) == ("SandboxDied", "the sandbox died: killed")
    assert results[1].text == "SandboxDied: killed by signal 9\n"
    assert [r.message for r in results[2:]] == ["skip: true in the recipe", "not run: cell 2 errored"]
    (suite,) = suites(render_junit([t]))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 1, 2)


def test_system_out_err_and_times() -> None:
    by_name = cases(make_transcript())
    mixed = by_name[f"cell 3 ({PATH}:10)"]
    assert (mixed.system_out, mixed.system_err) == ("a\nb\n", "warn\n")
    assert by_name[f"boom ({PATH}:19)"].system_err is by_name[f"cell 5 ({PATH}:17)"].system_out is None
    assert [case.time for case in by_name.values()] == [0.25, 0.375, 0.5, 0.625, 0.75, 2.01, 0.0, 0.0]
    t = with_cells(({}, {"duration": 0.12345}))
    assert next(iter(cases(t).values())).time == 0.123


NASTY = "nul\x00 bell\x07 esc\x1b[31m ff\x0c ]]> <&> \"'\t\ufffe\ufffftab\n"


def test_forbidden_characters_are_stripped_and_markup_survives() -> None:
    clean = "nul bell esc[31m ff ]]> <&> \"'\ttab\n"
    assert xml_safe(NASTY) == clean
    assert xml_safe("lone \ud800 surrogate") == "lone \\ud800 surrogate"  # kept, escaped
    error = CellError("E\x01rr", NASTY, NASTY, 3)
    outputs = (OutputChunk("stdout", NASTY), OutputChunk("stderr", "]]>" + NASTY))
    failed = {"status": S.FAILED, "reason": NASTY, "error": error, "outputs": outputs}
    t = with_cells(({"name": "na\x1bme <&>"}, failed), reason=NASTY)
    (case,) = cases(t).values()
    assert case.name == f"name <&> ({PATH}:1)"
    assert (case.system_out, case.system_err) == (clean, "]]>" + clean)
    (failure,) = case.result
    assert (failure.message, failure.type, failure.text) == (clean, "Err", clean)


def test_several_transcripts_make_several_suites() -> None:
    recipe = dataclasses.replace(make_transcript().recipe, name=None, path="b.py")
    other = with_cells(({}, {"duration": 0.5}), recipe=recipe)
    other = dataclasses.replace(other, status=RunStatus.PASSED, duration=1.25)
    xml = parse(render_junit([make_transcript(), other]))
    assert [(s.name, s.tests) for s in xml] == [("Demo recipe", 8), ("b.py", 1)]
    assert (xml.tests, xml.failures, xml.skipped, xml.time) == (9, 2, 2, 4.75)
    assert [case.classname for case in list(xml)[1]] == ["b"]


def test_run_that_failed_without_an_erroring_cell_gets_a_run_case() -> None:
    reason = "the sandbox could not start: no bwrap"
    t = with_cells(({}, {"status": S.NOT_RUN, "reason": "x"}), status=RunStatus.ERROR, reason=reason)
    (suite,) = suites(render_junit([t]))
    assert (suite.tests, suite.errors, suite.skipped) == (2, 1, 1)
    run = [case for case in suite if case.name == "(run)"]
    assert [(type(r), r.message, r.type) for r in run[0].result] == [(Error, reason, "run_error")]
    assert all(case.name != "(run)" for case in suites(render_junit([make_transcript()]))[0])


def test_render_and_format_for_path_know_junit() -> None:
    t = make_transcript()
    assert render(t, "junit") == render(t, "XML") == render_junit([t])
    assert format_for_path("out/report.XML") == "junit"
    with pytest.raises(ValueError, match="junit"):
        render(t, "pdf")


def test_render_all_makes_one_document_per_format() -> None:
    t, u = make_transcript(), make_transcript(status=RunStatus.PASSED)
    assert json.loads(render_all([t], "json"))["status"] == "failed"
    assert [d["status"] for d in json.loads(render_all([t, u], "json"))] == ["failed", "passed"]
    assert render_all([t], "md") == render_markdown(t)
    assert render_all([t, u], "markdown") == render_markdown(t) + "\n---\n\n" + render_markdown(u)
    assert len(suites(render_all([t, u], "junit"))) == 2
    assert render_all([t], "junit") == render(t, "junit")
    with pytest.raises(ValueError, match="unknown report format"):
        render_all([t], "yaml")

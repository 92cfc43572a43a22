"""Reports from the command line: JUnit files, GitHub annotations, and re-rendering a saved transcript."""

from __future__ import annotations

import json
from pathlib import Path

from junitparser import Failure, JUnitXml
from typer.testing import CliRunner, Result

from sandrun.app import app

FAILING = """\
name: arithmetic
cells:
  - x = 6 * 7
  - code: |
      print(x)
    expect:
      stdout: "41"
  - code: 1 / 0
"""


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """`sandrun ...` in-process, on the process backend."""
    environment = {"SANDRUN_BACKEND": "process", "GITHUB_ACTIONS": "", **(env or {})}
    return CliRunner(env=environment).invoke(app, [str(a) for a in args])


def test_junit_report_parses_with_a_junit_reader(tmp_path: Path) -> None:
    recipe = tmp_path / "arith.yaml"
    recipe.write_text(FAILING)
    result = invoke("run", recipe, "--keep-going", "--report", tmp_path / "results.xml")
    assert result.exit_code == 1, result.output
    suites = list(JUnitXml.fromfile(str(tmp_path / "results.xml")))
    assert [s.name for s in suites] == ["arithmetic"]
    cases = list(suites[0])
    assert len(cases) == 3
    failures = [r for case in cases for r in case.result if isinstance(r, Failure)]
    assert len(failures) == 2
    assert "-41" in failures[0].text and "+42" in failures[0].text


def test_github_annotations_point_at_the_failing_lines(tmp_path: Path) -> None:
    recipe = tmp_path / "arith.yaml"
    recipe.write_text(FAILING)
    result = invoke("run", recipe, "--keep-going", env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(lines) == 2
    assert lines[0].startswith(f"::error file={recipe},line=7,")  # the expected stdout that did not match
    assert lines[1].startswith(f"::error file={recipe},line=8,")  # the statement that raised


def test_annotations_leave_a_json_stdout_intact(tmp_path: Path) -> None:
    recipe = tmp_path / "arith.yaml"
    recipe.write_text(FAILING)
    result = invoke("run", recipe, "--format", "json", "--annotations", "github")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"
    assert "::error file=" in result.stderr


def test_no_annotations_outside_github_unless_asked(tmp_path: Path) -> None:
    recipe = tmp_path / "arith.yaml"
    recipe.write_text(FAILING)
    result = invoke("run", recipe)
    assert result.exit_code == 1
    assert "::error" not in result.stdout + result.stderr
    assert invoke("run", recipe, "--annotations", "gitlab").exit_code == 2


def test_report_rerenders_a_saved_transcript(tmp_path: Path) -> None:
    recipe = tmp_path / "arith.yaml"
    recipe.write_text(FAILING)
    saved = tmp_path / "saved.json"
    assert invoke("run", recipe, "--keep-going", "--report", saved).exit_code == 1
    markdown = invoke("report", saved, "--format", "md")
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith("# arithmetic")
    assert "```diff" in markdown.stdout
    junit = invoke("report", saved, "--format", "junit", "--output", tmp_path / "again.xml")
    assert junit.exit_code == 0, junit.output
    assert len(list(next(iter(JUnitXml.fromfile(str(tmp_path / "again.xml")))))) == 3
    again = invoke("report", saved, "--format", "json")
    assert json.loads(again.stdout) == json.loads(saved.read_text())


def test_report_refuses_what_is_not_a_transcript(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": "world"}')
    result = invoke("report", bogus)
    assert result.exit_code == 2
    assert "not a sandrun JSON transcript" in result.stderr
    assert invoke("report", tmp_path / "missing.json").exit_code == 2


DRIFTED = """\
cells:
  - code: print("hi")   # greet
    expect:
      stdout: "ho"
  - code: 6 * 7
    expect: {value: 41}
"""


def test_update_rewrites_drifted_outputs_and_then_passes(tmp_path: Path) -> None:
    recipe = tmp_path / "drift.yaml"
    recipe.write_text(DRIFTED)
    first = invoke("run", recipe, "--update")
    assert first.exit_code == 0, first.output
    assert recipe.read_text() == DRIFTED.replace('"ho"', '"hi"').replace("41", "42")
    assert f"{recipe}:4: cell 1: updated the expected stdout" in first.stderr
    second = invoke("run", recipe, "--update")
    assert second.exit_code == 0
    assert "nothing to update" in second.stderr
    assert invoke("run", recipe).exit_code == 0


def test_update_never_writes_after_the_sandbox_died(tmp_path: Path) -> None:
    recipe = tmp_path / "dies.yaml"
    text = DRIFTED + "  - import os; os._exit(0)\n"
    recipe.write_text(text)
    result = invoke("run", recipe, "--update")
    assert result.exit_code == 3
    assert "not updated" in result.stderr
    assert recipe.read_text() == text


def test_update_still_prints_the_transcript_asked_for(tmp_path: Path) -> None:
    recipe = tmp_path / "drift.yaml"
    recipe.write_text(DRIFTED)
    result = invoke("run", recipe, "--update", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "failed"  # what ran, before the recipe was updated


def test_an_internal_failure_still_leaves_every_transcript(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("")
    needs_packages = tmp_path / "a.yaml"
    needs_packages.write_text("packages: [something]\ncells:\n  - print(1)\n")
    fine = tmp_path / "b.yaml"
    fine.write_text("cells:\n  - print(2)\n")
    report = tmp_path / "all.json"
    result = invoke(
        "run", needs_packages, fine, "--report", report, env={"SANDRUN_CACHE_DIR": str(not_a_directory)}
    )
    assert result.exit_code == 3, result.output
    first, second = json.loads(report.read_text())
    assert first["status"] == "error" and "cache" in first["reason"]
    assert second["status"] == "passed"

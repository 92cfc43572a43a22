"""`action.yml`: checked against the structure GitHub requires of a composite action's metadata, and its
run step's command run here as the runner would run it (bash, the inputs as variables, GITHUB_OUTPUT)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.security.sandboxes import local_unavailable

ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def steps() -> list[dict[str, Any]]:
    return list(ACTION["runs"]["steps"])


def test_the_metadata_has_what_github_requires() -> None:
    assert {"name", "description", "runs"} <= set(ACTION)
    assert set(ACTION) <= {"name", "author", "description", "inputs", "outputs", "runs", "branding"}
    assert isinstance(ACTION["name"], str) and isinstance(ACTION["description"], str)
    assert ACTION["runs"]["using"] == "composite" and set(ACTION["runs"]) == {"using", "steps"}
    for name, spec in ACTION["inputs"].items():
        assert ID.match(name), name
        assert set(spec) <= {"description", "required", "default", "deprecationMessage"}
        assert spec["description"].strip(), f"input {name} is not documented"
        assert spec.get("required", False) or "default" in spec, f"optional input {name} has no default"
    for name, spec in ACTION["outputs"].items():
        assert ID.match(name) and set(spec) == {"description", "value"}, name  # composite outputs need both
    for step in steps():
        assert ("run" in step) != ("uses" in step), step
        allowed = {"name", "id", "if", "env", "working-directory", "continue-on-error"}
        allowed |= {"run", "shell"} if "run" in step else {"uses", "with"}
        assert set(step) <= allowed, step
        if "run" in step:
            assert step["shell"] == "bash", "a composite run step must name its shell"
        else:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
    assert set(ACTION["branding"]) <= {"icon", "color"}


def test_every_expression_names_a_declared_input_or_step() -> None:
    text = (ROOT / "action.yml").read_text()
    ids = {step["id"] for step in steps() if "id" in step}
    for expression in EXPRESSION.findall(text):
        for kind, name in re.findall(r"\b(inputs|steps)\.([\w-]+)", expression):
            assert name in (ACTION["inputs"] if kind == "inputs" else ids), expression


def test_no_input_is_pasted_into_a_script() -> None:
    # `${{ inputs.x }}` inside `run:` would let an input inject shell code: inputs go through `env:`.
    for step in steps():
        assert "${{" not in step.get("run", ""), step["name"]


@pytest.fixture
def run_step(tmp_path: Path) -> Any:
    """Run the action's `run` step as the runner would, with sandrun on PATH; returns (process, outputs)."""
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    step = next(s for s in steps() if s.get("id") == "run")

    def run(recipes: str, backend: str = "", args: str = "") -> tuple[subprocess.CompletedProcess[str], str]:
        output, summary = tmp_path / "output", tmp_path / "summary"
        output.write_text("")
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RECIPES": recipes,
            "BACKEND": backend,
            "ARGS": args,
            "REPORT_DIR": str(tmp_path / "report"),
        }
        ran = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return ran, output.read_text()

    return run


def test_the_run_step_runs_the_recipes_and_writes_the_reports(run_step: Any, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ok.yaml").write_text('cells:\n  - code: print("hi")\n    expect: {stdout: hi}\n')
    (tmp_path / "docs" / "notes.md").write_text("```python\nprint(6 * 7)\n```\n\n```output\n42\n```\n")
    ran, outputs = run_step("docs/*.yaml\ndocs/notes.md", args="--cell-timeout 30")
    assert ran.returncode == 0, ran.stderr
    report = tmp_path / "report"
    assert sorted(p.name for p in report.iterdir()) == ["report.json", "report.md", "report.xml"]
    assert f"report-dir={report}\nexit-code=0\n" == outputs
    assert "docs/notes.md" in (tmp_path / "summary").read_text()


def test_a_failing_cell_is_annotated_and_fails_the_step(run_step: Any, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text('cells:\n  - code: print("hi")\n    expect: {stdout: ho}\n')
    ran, outputs = run_step("bad.yaml", backend="process")
    assert ran.returncode == 1
    assert "::error file=bad.yaml,line=3" in ran.stdout
    assert outputs.endswith("exit-code=1\n")
    assert json.loads((tmp_path / "report" / "report.json").read_text())["backend"]["name"] == "process"


def test_inputs_cannot_inject_shell_code(run_step: Any, tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("cells:\n  - code: '1'\n")
    ran, _ = run_step("ok.yaml", args="$(touch injected) ; touch injected2")
    assert ran.returncode == 2  # sandrun refuses the unknown arguments; no shell ever sees them as code
    assert not (tmp_path / "injected").exists() and not (tmp_path / "injected2").exists()

"""The public API: `sandrun.run`, `sandrun.load`, the re-exported model, and a cheap `import sandrun`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sandrun
from tests.conftest import RECIPES
from tests.security.sandboxes import local_unavailable


def test_import_sandrun_imports_nothing_else_of_sandrun() -> None:
    code = "import json, sys, sandrun; print(json.dumps(sorted(m for m in sys.modules if 'sandrun' in m)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["sandrun"]


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in sandrun.__all__:
        assert getattr(sandrun, name) is not None
    assert set(sandrun.__all__) <= set(dir(sandrun))
    assert sandrun.CellStatus.PASSED.value == "passed"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sandrun.nope  # noqa: B018


def test_load_reads_a_recipe_as_the_command_does() -> None:
    recipe = sandrun.load(RECIPES / "quickstart.yaml")
    assert isinstance(recipe, sandrun.Recipe) and recipe.format == "yaml" and recipe.cells


def test_load_of_a_bad_recipe_raises_a_recipe_error_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cells:\n  - code: 1\n    expect: {nonsense: 1}\n")
    with pytest.raises(sandrun.RecipeError) as raised:
        sandrun.load(bad)
    assert f"{bad}:" in str(raised.value)


@pytest.mark.parametrize("backend", ["process", "local"])
def test_run_returns_the_transcript_and_reports_render_it(backend: str, write_recipe) -> None:
    if backend == "local" and (reason := local_unavailable()):
        pytest.skip(f"the local backend is unavailable: {reason}")
    path = write_recipe(
        "r.yaml",
        "cells:\n  - code: print('hi')\n    expect: {stdout: 'hi'}\n"
        "  - code: 1/0\n    expect: {error: ValueError}\n",
    )
    transcript = sandrun.run(path, backend=backend, memory="1G", output_limit=1 << 16)
    assert transcript.backend == backend
    assert transcript.status is sandrun.RunStatus.FAILED
    assert [r.status for r in transcript.results] == [sandrun.CellStatus.PASSED, sandrun.CellStatus.FAILED]
    markdown = sandrun.reports.render_all([transcript], "md")
    assert "ZeroDivisionError" in markdown
    assert transcript.limits["output_limit"] == 1 << 16


def test_run_takes_a_loaded_recipe_and_the_command_line_options(write_recipe) -> None:
    path = write_recipe("t.yaml", "cells:\n  - code: import os; print(os.environ['GREETING'])\n")
    transcript = sandrun.run(sandrun.load(path), backend="process", env={"GREETING": "hello"})
    assert transcript.status is sandrun.RunStatus.PASSED
    assert transcript.results[0].stdout == "hello\n"


@pytest.mark.parametrize(
    ("option", "value"), [("memory", "lots"), ("disk", -1), ("output_limit", True), ("memory", 1.5)]
)
def test_bad_sizes_are_usage_errors(option: str, value: object, write_recipe) -> None:
    path = write_recipe("s.yaml", "cells:\n  - code: '1'\n")
    with pytest.raises(sandrun.UsageError, match=option):
        sandrun.run(path, backend="process", **{option: value})


def test_an_unknown_backend_is_a_usage_error(write_recipe) -> None:
    path = write_recipe("s.yaml", "cells:\n  - code: '1'\n")
    with pytest.raises(sandrun.UsageError, match="unknown backend"):
        sandrun.run(path, backend="nowhere")

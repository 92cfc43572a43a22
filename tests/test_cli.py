"""The command line, end to end: exit codes, what goes to stdout and stderr, reports, options, signals.

`CliRunner()` here (click >= 8.2) keeps the streams apart: `result.stdout` is only stdout, `result.stderr`
only stderr, and `result.output` both interleaved. Tests that need a real process (signals, `-m`) use
`subprocess` with the interpreter running the tests.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner, Result

from sandrun.app import app

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
WriteRecipe = Callable[[str, str], Path]
PY = sys.executable


@pytest.fixture(autouse=True)
def restore_sigterm() -> Iterator[None]:
    """`sandrun run` installs a SIGTERM handler in the process; keep it out of the test process."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


# These tests are about the command line, not about isolation: they use the `process` backend (fast, and
# available everywhere) unless a test names another one with `--backend`, which overrides the variable.
BACKEND_ENV = {"SANDRUN_BACKEND": "process"}


def invoke(*args: str | Path) -> Result:
    return CliRunner(env=BACKEND_ENV).invoke(app, [str(a) for a in args], catch_exceptions=False)


def statuses(doc: dict[str, Any]) -> list[str]:
    return [cell["status"] for cell in doc["cells"]]


def transcript(result: Result, validator: jsonschema.Draft202012Validator) -> dict[str, Any]:
    """The JSON transcript printed on stdout, checked against the schema."""
    doc = json.loads(result.stdout)
    validator.validate(doc)
    return doc


# --- the bundled recipes and the output formats ---------------------------------------------------------


@pytest.mark.parametrize("name", ["quickstart.yaml", "stateful.py", "notebook.ipynb", "plotting.py"])
def test_bundled_recipes_pass(name: str) -> None:
    path = RECIPES / name
    result = invoke("run", path)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # text format: everything human goes to stderr
    assert f"{path}: passed (" in result.stderr


def test_text_progress_on_stderr() -> None:
    path = RECIPES / "quickstart.yaml"
    result = invoke("run", path)
    assert result.exit_code == 0, result.output
    assert f"--- show the result ({path}:12)\nThe result is: 15\npassed in " in result.stderr
    summary = re.search(
        rf"^{re.escape(str(path))}: passed \(6 passed\) in [0-9.]+ m?s \[(\w+), ", result.stderr, re.M
    )
    assert summary is not None, result.stderr
    assert summary.group(1) == "process"


def test_format_json(transcript_validator: jsonschema.Draft202012Validator) -> None:
    path = RECIPES / "quickstart.yaml"
    result = invoke("run", path, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = transcript(result, transcript_validator)
    assert doc["status"] == "passed"
    assert doc["recipe"]["path"] == str(path)
    assert doc["backend"] == {"name": "process", "isolation": "none"}
    assert statuses(doc) == ["passed"] * 6
    assert doc["summary"]["passed"] == 6 and doc["summary"]["total"] == 6
    assert doc["cells"][0]["stdout"] == "Hello from inside the sandbox!\n"
    assert doc["cells"][4]["stdout"] == "The result is: 15\n"
    assert doc["cells"][5]["error"]["type"] == "ZeroDivisionError"
    assert doc["limits"]["cell_timeout"] == 60.0


def test_format_md() -> None:
    path = RECIPES / "stateful.py"
    result = invoke("run", path, "--format", "md")
    assert result.exit_code == 0, result.output
    md = result.stdout
    assert md.startswith(f"# `{path}`: passed\n")
    assert "## Summary" in md
    assert "7 cells: 5 passed, 2 skipped." in md
    assert "| 2 | Define some data |" in md


def test_several_recipes_json_is_a_list(
    write_recipe: WriteRecipe, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    one = write_recipe("one.yaml", "cells:\n  - print(1)\n")
    two = write_recipe("two.yaml", "cells:\n  - print(2)\n")
    result = invoke("run", one, two, "--format", "json")
    assert result.exit_code == 0, result.output
    docs = json.loads(result.stdout)
    assert isinstance(docs, list)
    for doc in docs:
        transcript_validator.validate(doc)
    assert [(d["recipe"]["path"], d["cells"][0]["stdout"]) for d in docs] == [
        (str(one), "1\n"),
        (str(two), "2\n"),
    ]


def test_unknown_format() -> None:
    result = invoke("run", RECIPES / "quickstart.yaml", "--format", "yaml")
    assert result.exit_code == 2
    assert "--format 'yaml' is not one of: text, json, md" in result.stderr


def test_reports_json_and_md(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run", RECIPES / "quickstart.yaml", "--report", "x.json", "--report", "x.md")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    doc = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    transcript_validator.validate(doc)
    assert doc["status"] == "passed"
    assert statuses(doc) == ["passed"] * 6
    md = (tmp_path / "x.md").read_text(encoding="utf-8")
    assert md.startswith(f"# Quickstart (`{RECIPES / 'quickstart.yaml'}`): passed\n")
    assert "6 cells: 6 passed." in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.md"]  # no temporary files left


def test_report_with_unknown_suffix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run", RECIPES / "quickstart.yaml", "--report", "x.txt")
    assert result.exit_code == 2
    assert "--report x.txt" in result.stderr
    assert ".json, .md" in result.stderr
    assert "--- " not in result.stderr  # refused before anything ran
    assert not (tmp_path / "x.txt").exists()


def test_report_in_missing_directory(tmp_path: Path) -> None:
    result = invoke("run", RECIPES / "quickstart.yaml", "--report", tmp_path / "nodir" / "x.json")
    assert result.exit_code == 2
    assert "internal error" not in result.output


# --- failures, expectations and bad recipes -------------------------------------------------------------

FAILING = """\
cells:
  - print("one")
  - raise ValueError("boom")
  - print("three")
  - print("four")
"""


def test_failing_cell_stops_the_run(
    write_recipe: WriteRecipe, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    path = write_recipe("fail.yaml", FAILING)
    result = invoke("run", path, "--format", "json")
    assert result.exit_code == 1
    doc = transcript(result, transcript_validator)
    assert doc["status"] == "failed"
    assert statuses(doc) == ["passed", "failed", "not_run", "not_run"]
    assert doc["cells"][1]["error"]["type"] == "ValueError"
    assert doc["cells"][1]["error"]["line"] == 3
    assert doc["cells"][1]["reason"] == "raised ValueError: boom"
    for cell in doc["cells"][2:]:
        assert "--keep-going" in cell["reason"]
        assert f"{path}:3" in cell["reason"]
        assert cell["stdout"] == ""
    assert "Traceback (most recent call last)" in result.stderr  # the cell's own traceback is shown
    assert "later cells were not run (use --keep-going to run every cell)" in result.stderr


def test_keep_going_runs_every_cell(
    write_recipe: WriteRecipe, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    path = write_recipe("fail.yaml", FAILING)
    result = invoke("run", path, "--format", "json", "--keep-going")
    assert result.exit_code == 1
    doc = transcript(result, transcript_validator)
    assert statuses(doc) == ["passed", "failed", "passed", "passed"]
    assert [c["stdout"] for c in doc["cells"]] == ["one\n", "", "three\n", "four\n"]
    assert doc["reason"] is None


def test_expected_error_not_raised(
    write_recipe: WriteRecipe, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    path = write_recipe(
        "expect.yaml",
        """\
        cells:
          - code: x = 1
            expect: {error: ValueError}
          - print(x)
        """,
    )
    result = invoke("run", path, "--format", "json")
    assert result.exit_code == 1
    doc = transcript(result, transcript_validator)
    assert statuses(doc) == ["failed", "not_run"]
    assert doc["cells"][0]["reason"] == "expected ValueError to be raised, but the cell raised nothing"


def test_expected_error_raised_passes(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        "expect.yaml",
        "cells:\n  - code: '{}[1]'\n    expect: {error: LookupError}\n  - print('after')\n",
    )
    result = invoke("run", path)
    assert result.exit_code == 0, result.output
    assert "after\n" in result.stderr


def test_bad_recipe_is_a_usage_error_without_traceback(write_recipe: WriteRecipe) -> None:
    path = write_recipe("bad.yaml", "name: bad\ncells:\n  - code: pass\n    nmae: x\n")
    result = invoke("run", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"sandrun: error: {path}:4: unknown key 'nmae' in cell 1" in result.stderr
    assert "did you mean 'name'?" in result.stderr
    assert "Traceback" not in result.output


def test_invalid_yaml_is_a_usage_error_without_traceback(write_recipe: WriteRecipe) -> None:
    path = write_recipe("bad.yaml", "cells:\n  - pass\nname: a: b\n")
    result = invoke("run", path)
    assert result.exit_code == 2
    assert f"{path}:3: invalid YAML" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_yaml_tag_is_a_usage_error(write_recipe: WriteRecipe) -> None:
    path = write_recipe("tag.yaml", "cells:\n  - !shell echo hi\n")
    result = invoke("run", path)
    assert result.exit_code == 2
    assert f"{path}:2: " in result.stderr


def test_one_bad_recipe_means_nothing_runs(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    good = write_recipe("good.yaml", "cells:\n  - open('ran.txt', 'w').write('x')\n")
    bad = write_recipe("bad.yaml", "cells:\n  - pass\ncell: 1\n")
    worse = write_recipe("worse.yaml", "cells: []\n")
    result = invoke("run", good, bad, worse, "--workdir", workdir, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{bad}:3: unknown key 'cell'" in result.stderr
    assert f"{worse}:1: `cells` must be a non-empty list" in result.stderr  # every problem is listed
    assert "--- " not in result.stderr
    assert not (workdir / "ran.txt").exists()


def test_cells_command(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        "r.yaml",
        """\
        cells:
          - print(1)
          - name: the second
            code: |
              x = 2
          - name: skipped one
            code: pass
            skip: true
        """,
    )
    result = invoke("cells", path)
    assert result.exit_code == 0, result.output
    rows = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()]
    assert rows == [
        ["1", "code", f"{path}:2", "cell 1"],
        ["2", "code", f"{path}:5", "the second"],
        ["3", "code", f"{path}:7", "skipped one (skip)"],
    ]


def test_cells_command_percent_format() -> None:
    path = RECIPES / "stateful.py"
    result = invoke("cells", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 7
    assert re.split(r"\s{2,}", lines[0].strip()) == ["1", "markdown", f"{path}:2", "cell 1"]
    assert re.split(r"\s{2,}", lines[1].strip()) == ["2", "code", f"{path}:8", "Define some data"]


def test_cells_command_bad_recipe(write_recipe: WriteRecipe) -> None:
    path = write_recipe("r.yaml", "cells:\n  - 42\n")
    result = invoke("cells", path)
    assert result.exit_code == 2
    assert f"{path}:2: cell 1 code must be a string of Python code" in result.stderr
    assert "Traceback" not in result.output


# --- options ---------------------------------------------------------------------------------------------


def test_env_option_visible_inside(write_recipe: WriteRecipe) -> None:
    path = write_recipe(
        "env.yaml",
        """\
        env: {A: from-recipe, C: kept}
        cells:
          - import os; print(os.environ['A'], os.environ['B'], os.environ['C'])
        """,
    )
    result = invoke("run", path, "--env", "A=1", "--env", "B=x=y", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cells"][0]["stdout"] == "1 x=y kept\n"


@pytest.mark.parametrize("pair", ["bad", "=value"])
def test_env_option_malformed(pair: str) -> None:
    result = invoke("run", RECIPES / "quickstart.yaml", "--env", pair)
    assert result.exit_code == 2
    assert f"--env {pair!r} is not of the form NAME=VALUE" in result.stderr
    assert "--- " not in result.stderr


def test_unknown_backend() -> None:
    result = invoke("run", RECIPES / "quickstart.yaml", "--backend", "nope")
    assert result.exit_code == 2
    assert "unknown backend 'nope'" in result.stderr
    known = re.search(r"choose one of: (.*)", result.stderr)
    assert known is not None, result.stderr
    assert "process" in known.group(1).split(", ")


def test_cell_timeout_keeps_the_interpreter(
    write_recipe: WriteRecipe, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    path = write_recipe(
        "loop.yaml",
        """\
        cells:
          - x = 41
          - |
            while True:
                pass
          - print(x + 1)
        """,
    )
    started = time.monotonic()
    result = invoke("run", path, "--cell-timeout", "0.5", "--keep-going", "--format", "json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    doc = transcript(result, transcript_validator)
    assert statuses(doc) == ["passed", "timeout", "passed"]
    assert doc["cells"][1]["reason"] == "the cell ran past its 0.5 s timeout"
    assert 0.45 <= doc["cells"][1]["duration"] < 3
    assert doc["cells"][2]["stdout"] == "42\n"  # same interpreter, state intact
    assert doc["limits"]["cell_timeout"] == 0.5
    assert elapsed < 10


@pytest.mark.parametrize("timeout", ["inf", "1e300"])
def test_huge_cell_timeout_is_not_an_internal_error(write_recipe: WriteRecipe, timeout: str) -> None:
    path = write_recipe("ok.yaml", "cells:\n  - print('ok')\n")
    result = invoke("run", path, "--cell-timeout", timeout)
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.output


def test_sandbox_death_is_exit_3(
    write_recipe: WriteRecipe, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    path = write_recipe(
        "die.yaml",
        "cells:\n  - print('before')\n  - import os; os._exit(0)\n  - print('after')\n",
    )
    result = invoke("run", path, "--format", "json")
    assert result.exit_code == 3
    doc = transcript(result, transcript_validator)
    assert doc["status"] == "error"
    assert statuses(doc) == ["passed", "error", "not_run"]
    assert doc["cells"][1]["error"]["type"] == "SandboxDied"
    assert "exited with status 0" in doc["cells"][1]["reason"]
    assert doc["cells"][2]["reason"].startswith(f"the sandbox stopped during cell 2 ({path}:3)")
    assert doc["reason"] == doc["cells"][2]["reason"]


def test_workdir_receives_files(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    path = write_recipe(
        "write.yaml",
        "cells:\n  - open('made-by-cell.txt', 'w').write('hello')\n  - import os; print(os.getcwd())\n",
    )
    result = invoke("run", path, "--workdir", workdir, "--format", "json")
    assert result.exit_code == 0, result.output
    assert (workdir / "made-by-cell.txt").read_text() == "hello"
    assert Path(json.loads(result.stdout)["cells"][1]["stdout"].strip()).resolve() == workdir.resolve()
    assert workdir.is_dir()  # a workdir the user gave is not removed


def test_default_workdir_is_fresh_and_removed(write_recipe: WriteRecipe) -> None:
    path = write_recipe("cwd.yaml", "cells:\n  - import os; print(os.getcwd())\n")
    result = invoke("run", path, "--format", "json")
    assert result.exit_code == 0, result.output
    cwd = Path(json.loads(result.stdout)["cells"][0]["stdout"].strip())
    assert cwd.name.startswith("sandrun-")
    assert not cwd.exists()


def test_workdir_must_exist(tmp_path: Path) -> None:
    result = invoke("run", RECIPES / "quickstart.yaml", "--workdir", tmp_path / "missing")
    assert result.exit_code == 2
    assert "is not a directory" in result.stderr


def test_missing_python_is_exit_3(transcript_validator: jsonschema.Draft202012Validator) -> None:
    result = invoke("run", RECIPES / "quickstart.yaml", "--python", "/nonexistent/python", "--format", "json")
    assert result.exit_code == 3
    doc = transcript(result, transcript_validator)
    assert doc["status"] == "error"
    assert doc["python_version"] is None
    assert statuses(doc) == ["not_run"] * 6
    assert "cannot start /nonexistent/python: No such file or directory" in result.stderr
    assert "check --python" in result.stderr
    assert "Traceback" not in result.output


def test_quiet_hides_cell_output(write_recipe: WriteRecipe) -> None:
    path = write_recipe("chatty.yaml", "cells:\n  - print('chatty output')\n  - 1 + 1\n")
    loud = invoke("run", path)
    assert loud.exit_code == 0, loud.output
    assert "chatty output" in loud.stderr and "=> 2" in loud.stderr  # control: normally shown
    quiet = invoke("run", path, "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert "chatty output" not in quiet.output
    assert "=> 2" not in quiet.output
    assert "--- " not in quiet.output
    assert f"{path}: passed (2 passed)" in quiet.stderr


def test_quiet_still_shows_failures(write_recipe: WriteRecipe) -> None:
    path = write_recipe("fail.yaml", "cells:\n  - print('chatty')\n  - 1 / 0\n")
    result = invoke("run", path, "-q")
    assert result.exit_code == 1
    assert "chatty" not in result.output
    assert f"cell 2 ({path}:3) failed in " in result.stderr
    assert "ZeroDivisionError: division by zero" in result.stderr


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"sandrun \d+\.\d+\.\d+\S*\n", result.stdout)


# --- real processes --------------------------------------------------------------------------------------


def test_python_m_sandrun_help() -> None:
    proc = subprocess.run(
        [PY, "-m", "sandrun", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "python -m sandrun" in proc.stdout
    assert re.search(r"^\W*run\s+Run recipes", proc.stdout, re.MULTILINE)
    assert re.search(r"^\W*cells\s+Show how a recipe is split", proc.stdout, re.MULTILINE)


def test_python_m_sandrun_runs_a_recipe(tmp_path: Path) -> None:
    proc = subprocess.run(
        [PY, "-m", "sandrun", "run", str(RECIPES / "quickstart.yaml"), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, **BACKEND_ENV},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "passed"


SLOW = """\
cells:
  - print("first cell done")
  - |
    import time
    time.sleep(30)
  - print("never")
"""


def start_and_signal(tmp_path: Path, signum: int, wait_after: float = 0.0) -> tuple[int, float, str]:
    """Run SLOW; once cell 2 has started, send `signum`. Returns exit code, seconds to exit, stderr."""
    (tmp_path / "slow.yaml").write_text(SLOW, encoding="utf-8")
    proc = subprocess.Popen(
        [PY, "-m", "sandrun", "run", "slow.yaml", "--report", "out.json"],
        cwd=tmp_path,
        env={**os.environ, **BACKEND_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 30
    try:
        # Cell 1's output is followed by its verdict and cell 2's header: from then on cell 2 is running,
        # so cell 1's result is final. (Signalling on the output alone races cell 1's `done` event.)
        while b"first cell done" not in seen or b"--- cell 2" not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"cell 2 never started: {seen!r}"
            ready, _, _ = select.select([proc.stderr], [], [], remaining)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 65536)
                assert chunk, f"sandrun ended early ({proc.wait()}): {seen!r}"
                seen += chunk
        if wait_after:
            time.sleep(wait_after)
        sent = time.monotonic()
        proc.send_signal(signum)
        rest = proc.stderr.read()
        code = proc.wait(timeout=10)
        return code, time.monotonic() - sent, (seen + rest).decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_leaves_a_transcript(
    tmp_path: Path, signum: int, transcript_validator: jsonschema.Draft202012Validator
) -> None:
    code, seconds, stderr = start_and_signal(tmp_path, signum)
    assert code == 130, stderr
    assert seconds < 5, stderr
    doc = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    transcript_validator.validate(doc)
    assert doc["status"] == "interrupted"
    assert "interrupted by the user" in doc["reason"]
    assert statuses(doc) == ["passed", "error", "not_run"]
    assert doc["cells"][0]["stdout"] == "first cell done\n"
    assert doc["cells"][1]["reason"] == "interrupted"
    assert doc["cells"][1]["error"]["type"] == "KeyboardInterrupt"
    assert "interrupted" in doc["cells"][2]["reason"]
    assert "slow.yaml: interrupted" in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "slow.yaml"]


def test_interrupted_cell_records_how_long_it_ran(tmp_path: Path) -> None:
    code, _, _ = start_and_signal(tmp_path, signal.SIGINT, wait_after=0.3)
    assert code == 130
    doc = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert doc["cells"][1]["duration"] >= 0.25

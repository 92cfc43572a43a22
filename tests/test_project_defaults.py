"""Project defaults in pyproject.toml's `[tool.sandrun]`: paths to run, settings, overrides and skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandrun.errors import RecipeError
from sandrun.model import MatchMode
from sandrun.project import Project, find_project, glob_regex, read_project
from sandrun.toml_text import KeyLines
from tests.security.sandboxes import local_unavailable

RECIPE = "cells:\n  - print(1)\n"


def sandrun(cwd: Path, *args: str, backend: str = "process") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sandrun", "run", "--backend", backend, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def project(tmp_path: Path, table: str) -> Project:
    (tmp_path / "pyproject.toml").write_text(table)
    found = read_project(tmp_path / "pyproject.toml")
    assert found is not None
    return found


def refused(tmp_path: Path, table: str) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        project(tmp_path, table)
    return caught.value


def test_no_paths_runs_the_projects_paths(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("```python\nprint('from docs')\n```\n")
    (tmp_path / "README.md").write_text("```python\nprint('from readme')\n```\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.sandrun]\npaths = ["README.md", "docs/"]\n'
    )
    done = sandrun(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "README.md: passed (1 passed)" in done.stderr and "docs/a.md: passed (1 passed)" in done.stderr


def test_no_paths_and_no_project_setting_is_a_usage_error(tmp_path: Path) -> None:
    done = sandrun(tmp_path)
    assert done.returncode == 2
    assert "no recipes given" in done.stderr and "[tool.sandrun]" in done.stderr


def test_a_wrong_key_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sandrun]\npath = ["docs/"]\n')
    done = sandrun(tmp_path)
    assert done.returncode == 2
    assert "pyproject.toml:2: unknown key 'path' in [tool.sandrun]" in done.stderr
    assert "did you mean 'paths'?" in done.stderr and "Traceback" not in done.stderr


# --- finding the file


def test_the_project_is_found_from_a_subdirectory_with_paths_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sandrun]\npaths = ["README.md"]\n')
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "docs" / "pyproject.toml").write_text('[project]\nname = "sub"\n')  # no table: looked past
    monkeypatch.chdir(tmp_path / "docs" / "deep")
    found = find_project()
    assert found is not None and found.root == tmp_path
    assert found.file == os.path.join("..", "..", "pyproject.toml")
    assert found.default_paths() == [os.path.join("..", "..", "README.md")]


@pytest.mark.parametrize("boundary", [".git", ".hg"])
def test_the_search_stops_at_the_top_of_a_repository(tmp_path: Path, boundary: str) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sandrun]\npaths = ["x"]\n')
    repository = tmp_path / "repo" / "src"
    repository.mkdir(parents=True)
    assert find_project(repository) is not None  # control: found above while nothing marks a repository
    (tmp_path / "repo" / boundary).mkdir()
    assert find_project(repository) is None
    (tmp_path / "repo" / boundary).rmdir()
    (tmp_path / "repo" / boundary).write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    assert find_project(repository) is None


PLANTED = '[tool.sandrun]\n\n[[tool.sandrun.overrides]]\npaths = ["**"]\nskip = true\n'
"""A project table that skips every recipe below it."""


def foreign(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `path` belong to another user: chown as root; otherwise this process takes another uid in the
    project module's eyes (the file stays its real owner's, who is then neither "you" nor root)."""
    if os.getuid() == 0:
        os.chown(path, 54321, 54321)
    else:
        monkeypatch.setattr("sandrun.project.os.getuid", lambda: os.stat(path).st_uid + 1)


def test_a_pyproject_another_user_left_above_the_current_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"  # /tmp, say: open to all, and no repository above
    (shared / "mine").mkdir(parents=True)
    planted = shared / "pyproject.toml"
    planted.write_text(PLANTED.replace("[tool.sandrun]\n", "[tool.sandrun]\nnetwork = true\n"))
    found = find_project(shared / "mine")
    assert found is not None and found.settings.network  # control: a file of one's own is read from below
    foreign(planted, monkeypatch)
    with pytest.raises(RecipeError) as caught:
        find_project(shared / "mine")
    assert caught.value.path == os.path.relpath(planted)
    assert "belongs to uid" in str(caught.value) and caught.value.hint
    found = find_project(shared)  # run from its own directory, it is the user's choice: read
    assert found is not None and found.settings.network


def test_sandrun_run_below_a_foreign_pyproject_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root (the unit test above covers both)")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "r.yaml").write_text(RECIPE)
    planted = tmp_path / "pyproject.toml"
    planted.write_text(PLANTED)
    assert "nothing to run" in sandrun(tmp_path / "mine", ".").stderr  # control: it would skip all
    os.chown(planted, 54321, 54321)
    done = sandrun(tmp_path / "mine", ".")
    assert done.returncode == 2, done.stderr
    assert "pyproject.toml: not read: it belongs to uid 54321" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_pyproject_without_the_table_is_no_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "sandrun-like"\n')
    assert read_project(tmp_path / "pyproject.toml") is None


# --- settings and precedence


def test_settings_apply_where_the_recipe_gives_none_and_overrides_lie_over_them(tmp_path: Path) -> None:
    found = project(
        tmp_path,
        "[tool.sandrun]\ntimeout = 30\nenv = {A = 'project', B = 'project'}\nnetwork = false\n"
        "backend = 'process'\npackages = ['six']\n\n"
        "[[tool.sandrun.overrides]]\npaths = ['docs/**']\ntimeout = 20\nenv = {B = 'first'}\n"
        "packages = ['rich']\n\n"
        "[[tool.sandrun.overrides]]\npaths = ['docs/late/*.yaml']\ntimeout = 10\nnetwork = true\n",
    )
    (tmp_path / "docs" / "late").mkdir(parents=True)
    plain = tmp_path / "plain.yaml"
    plain.write_text(RECIPE)
    late = tmp_path / "docs" / "late" / "r.yaml"
    late.write_text(RECIPE)
    own = tmp_path / "docs" / "own.yaml"
    own.write_text("timeout: 5\nenv: {A: own}\nnetwork: false\nbackend: local\npackages: [six]\n" + RECIPE)

    recipe = found.load(plain)
    assert (recipe.timeout, dict(recipe.env), recipe.network, recipe.backend, recipe.packages) == (
        30, {"A": "project", "B": "project"}, False, "process", ("six",)
    )  # fmt: skip
    recipe = found.load(late)
    assert (recipe.timeout, dict(recipe.env), recipe.network, recipe.packages) == (
        10, {"A": "project", "B": "first"}, True, ("six", "rich")
    )  # fmt: skip
    recipe = found.load(own)
    assert (recipe.timeout, dict(recipe.env), recipe.network, recipe.backend, recipe.packages) == (
        5, {"A": "own", "B": "first"}, False, "local", ("six", "rich")
    )  # fmt: skip


def test_a_command_line_timeout_beats_the_projects_but_not_the_recipes(tmp_path: Path) -> None:
    found = project(tmp_path, "[tool.sandrun]\ntimeout = 30\n")
    (tmp_path / "plain.yaml").write_text(RECIPE)
    (tmp_path / "own.yaml").write_text("timeout: 5\n" + RECIPE)
    assert found.load(tmp_path / "plain.yaml", cli_timeout=False).timeout == 30
    assert found.load(tmp_path / "plain.yaml", cli_timeout=True).timeout is None  # --cell-timeout applies
    assert found.load(tmp_path / "own.yaml", cli_timeout=True).timeout == 5


def test_the_default_match_mode_applies_to_texts_that_name_none(tmp_path: Path) -> None:
    found = project(tmp_path, "[tool.sandrun]\nmatch = 'whitespace'\n")
    (tmp_path / "r.yaml").write_text(
        "cells:\n  - code: print(1)\n    expect: {stdout: '1'}\n"
        "  - code: print(2)\n    expect: {stdout: '2', match: exact}\n"
    )
    (tmp_path / "d.md").write_text("```python\nprint(1)\n```\n\n```output\n1\n```\n")
    (tmp_path / "p.py").write_text("# %%\nprint(1)\n# expect stdout:\n# 1\n")
    yaml_cells = found.load(tmp_path / "r.yaml").cells
    assert [c.expect.stdout.mode for c in yaml_cells if c.expect.stdout] == [
        MatchMode.WHITESPACE,
        MatchMode.EXACT,
    ]
    for name in ("d.md", "p.py"):
        stdout = found.load(tmp_path / name).code_cells[0].expect.stdout
        assert stdout is not None and stdout.mode is MatchMode.WHITESPACE, name
    from sandrun.readers import load_recipe

    control = load_recipe(tmp_path / "r.yaml").cells[0].expect.stdout
    assert control is not None and control.mode is MatchMode.ELLIPSIS  # without the project, the default


def test_local_packages_and_a_python_path_are_relative_to_the_pyproject(tmp_path: Path) -> None:
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    found = project(tmp_path, "[tool.sandrun]\npackages = ['.', 'rich>=13']\npython = 'venv/bin/python'\n")
    assert found.settings.packages == (str(tmp_path), "rich>=13")
    assert found.settings.python == str(tmp_path / "venv" / "bin" / "python")
    bare = project(tmp_path, "[tool.sandrun]\npython = 'python3.12'\n")
    assert bare.settings.python == "python3.12"  # a name is looked up where it always is


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("docs/**", "docs/a/b.md", True),
        ("docs/**/*.md", "docs/a.md", True),
        ("docs/**/*.md", "docs/a/b/c.md", True),
        ("docs/*.md", "docs/a/b.md", False),
        ("docs", "docs/a/b.md", True),
        ("docs/", "docs/a.md", True),
        ("./README.md", "README.md", True),
        ("*.md", "docs/a.md", False),
        ("**/*.md", "docs/a.md", True),
        ("doc?/[ab].md", "docs/a.md", True),
        ("docs/[!ab].md", "docs/a.md", False),
        ("docs/[!ab].md", "docs/c.md", True),
        ("a.b", "axb", False),
    ],
)
def test_override_globs(pattern: str, path: str, matches: bool) -> None:
    from sandrun.project import Override, Settings

    assert Override((pattern,), Settings(), None, None, 1).matches(path) is matches
    assert glob_regex(pattern).pattern  # compiled once, cached


# --- errors: file:line, did you mean, the same rules as a YAML recipe


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ("[tool.sandrun]\ntimeout = 30\nmatch = 'exactly'\n", 3, "match 'exactly' is not a match mode"),
        ("[tool.sandrun]\n\ntimeout = -1\n", 3, "timeout must be more than 0 and at most"),
        ("[tool.sandrun]\nenv = ['A=1']\n", 2, "env must be a mapping of NAME: value, not a list"),
        ("[tool.sandrun]\npackages = ['--index-url=http://x']\n", 2, "is not a requirement"),
        ("[tool.sandrun]\nnetwork = 'yes'\n", 2, "network must be true or false"),
        ("[tool.sandrun]\npaths = '/etc'\n", 2, "paths must be a list of paths"),
        ("[tool.sandrun]\npaths = ['../elsewhere']\n", 2, "must be relative to"),
        ("[tool.sandrun]\nfiles = ['x']\n", 2, "unknown key 'files' in [tool.sandrun]"),
        ("[tool.sandrun.env]\nA = 1\nB = [1]\n", 1, "env B must be a string or a number"),
        (
            "[tool.sandrun]\n\n[[tool.sandrun.overrides]]\npaths = ['a']\n\n[[tool.sandrun.overrides]]\n"
            "paths = ['b']\nskp = true\n",
            8,
            "unknown key 'skp' in [[tool.sandrun.overrides]] number 2",
        ),
        ("[tool.sandrun]\n[[tool.sandrun.overrides]]\nskip = true\n", 2, "has no paths"),
        (
            "[tool.sandrun]\n[[tool.sandrun.overrides]]\npaths = ['a']\nreason = 'x'\n",
            4,
            "beside skip = true",
        ),
        ("[tool.sandrun]\noverrides = {paths = ['a']}\n", 2, "overrides must be an array of tables"),
        ("[tool.sandrun]\ntimeout = \n", 2, "invalid TOML"),
        ("[tool]\nsandrun.timeout = 0\n", 2, "timeout must be more than 0"),
    ],
)
def test_a_wrong_setting_is_refused_at_its_line(tmp_path: Path, table: str, line: int, message: str) -> None:
    error = refused(tmp_path, table)
    assert (error.path, error.line) == ("pyproject.toml", line) or error.path.endswith("pyproject.toml")
    assert error.line == line, error
    assert message in str(error)


def test_typos_get_did_you_mean(tmp_path: Path) -> None:
    assert "did you mean 'exact'?" in str(refused(tmp_path, "[tool.sandrun]\nmatch = 'exct'\n"))
    assert "did you mean 'timeout'?" in str(refused(tmp_path, "[tool.sandrun]\ntimeuot = 3\n"))
    override = "[tool.sandrun]\n[[tool.sandrun.overrides]]\npaths = ['a']\nreasn = 'x'\n"
    assert "did you mean 'reason'?" in str(refused(tmp_path, override))


def test_the_same_rule_refuses_the_same_setting_in_a_yaml_recipe(tmp_path: Path) -> None:
    """One validation: the project's message is the YAML recipe's, word for word."""
    from sandrun.readers import load_recipe

    (tmp_path / "r.yaml").write_text("packages: ['-r requirements.txt']\n" + RECIPE)
    with pytest.raises(RecipeError) as in_yaml:
        load_recipe(tmp_path / "r.yaml")
    in_project = refused(tmp_path, "[tool.sandrun]\npackages = ['-r requirements.txt']\n")
    assert in_project.message == in_yaml.value.message and in_project.hint == in_yaml.value.hint


def test_key_lines_follow_dotted_keys_subtables_and_arrays_of_tables() -> None:
    lines = KeyLines(
        '[tool.sandrun]\ntimeout = 3\nenv.A = "1"\ntext = """\nfake = 1\n"""\n[tool.sandrun.more]\nx = 1\n'
        "[[tool.sandrun.overrides]]\npaths = []\n[[tool.sandrun.overrides]]\npaths = []\n"
    )
    assert lines.line_of(("tool", "sandrun", "timeout")) == 2
    assert lines.line_of(("tool", "sandrun", "env")) == 3
    assert lines.line_of(("tool", "sandrun", "fake")) == 1  # inside a string: not a key
    assert lines.line_of(("tool", "sandrun", "more", "x")) == 8
    assert lines.line_of(("tool", "sandrun", "overrides", 1, "paths")) == 12
    assert lines.line_of(("tool", "sandrun", "overrides", 0)) == 9


def test_cli_errors_exit_2_with_the_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    (tmp_path / "pyproject.toml").write_text("[tool.sandrun]\n\ntimeout = 'soon'\n")
    done = sandrun(tmp_path, "r.yaml")
    assert done.returncode == 2, done.stderr
    assert "pyproject.toml:3: timeout must be a number of seconds" in done.stderr
    assert "Traceback" not in done.stderr


# --- runs: the CLI in a project, with a real sandbox


@pytest.fixture
def sandboxed() -> None:
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")


PROJECT = """\
[tool.sandrun]
paths = ["docs/"]
timeout = 0.5
env = {GREETING = "hello from the project"}

[[tool.sandrun.overrides]]
paths = ["docs/gpu/**"]
skip = true
reason = "needs a GPU"
"""


def write_docs(root: Path) -> None:
    (root / "docs" / "gpu").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PROJECT)
    (root / "docs" / "env.md").write_text(
        "```python\nimport os\nprint(os.environ['GREETING'])\n```\n\n```output\nhello from the project\n```\n"
    )
    (root / "docs" / "slow.yaml").write_text("cells:\n  - import time; time.sleep(2)\n")
    (root / "docs" / "gpu" / "cuda.md").write_text("```python\nraise SystemExit('must not run')\n```\n")


def test_sandrun_run_in_a_project_applies_its_settings_and_reports_its_skips(
    tmp_path: Path, sandboxed: None
) -> None:
    write_docs(tmp_path)
    done = sandrun(tmp_path, "--keep-going", backend="local")
    assert done.returncode == 1, done.stderr  # the project's 0.5 s timeout stops the slow cell
    assert "docs/env.md: passed (1 passed)" in done.stderr
    assert "docs/slow.yaml: failed (1 timeout)" in done.stderr
    assert "docs/gpu/cuda.md: skipped by pyproject.toml:6: needs a GPU" in done.stderr
    assert "3 recipes: 1 passed, 1 failed, 1 skipped" in done.stderr
    assert "must not run" not in done.stderr
    assert "match no recipe" not in done.stderr  # every override matched a recipe


def test_an_override_whose_globs_match_no_recipe_is_warned_about(tmp_path: Path) -> None:
    write_docs(tmp_path)
    (tmp_path / "docs" / "slow.yaml").unlink()
    table = PROJECT.replace('paths = ["docs/gpu/**"]', 'paths = ["doc/gpu/**"]')  # misspelt: skips nothing
    (tmp_path / "pyproject.toml").write_text(table)
    done = sandrun(tmp_path)
    assert "pyproject.toml:6: the override's paths ['doc/gpu/**'] match no recipe" in done.stderr
    assert "must not run" in done.stderr  # what the misspelt glob failed to skip
    named = sandrun(tmp_path, "docs/env.md")  # a file named on the command line: no project-wide census
    assert "match no recipe" not in named.stderr


def test_sandrun_cells_reads_the_recipe_as_the_project_has_it(tmp_path: Path) -> None:
    write_docs(tmp_path)
    command = [sys.executable, "-m", "sandrun", "cells"]
    skipped = subprocess.run([*command, "docs/gpu/cuda.md"], cwd=tmp_path, capture_output=True, text=True)
    assert skipped.returncode == 0, skipped.stderr
    assert "skips it unless it is named: skipped by pyproject.toml:6: needs a GPU" in skipped.stderr
    assert "docs/gpu/cuda.md:2" in skipped.stdout  # its cells are still listed
    kept = subprocess.run([*command, "docs/env.md"], cwd=tmp_path, capture_output=True, text=True)
    assert kept.returncode == 0 and "skips it unless" not in kept.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.sandrun]\nmatch = "regex"\n')
    (tmp_path / "docs" / "bad.md").write_text("```python\nprint('[')\n```\n\n```output\n[\n```\n")
    bad = subprocess.run([*command, "docs/bad.md"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2, bad.stderr  # the project's match mode applies: `[` is no regex
    assert "docs/bad.md:" in bad.stderr and "Traceback" not in bad.stderr


def test_the_command_line_beats_the_project(tmp_path: Path, sandboxed: None) -> None:
    write_docs(tmp_path)
    done = sandrun(tmp_path, "docs/", "docs/gpu/cuda.md", "--cell-timeout", "30", backend="local")
    # --cell-timeout beats the project's timeout; a file the command line names is run even if skipped
    assert "docs/slow.yaml: passed" in done.stderr, done.stderr
    assert "docs/gpu/cuda.md: failed" in done.stderr and "must not run" in done.stderr
    assert "skipped by" not in done.stderr


def test_when_every_recipe_is_skipped_nothing_runs(tmp_path: Path) -> None:
    write_docs(tmp_path)
    done = sandrun(tmp_path, "docs/gpu/")
    assert done.returncode == 0, done.stderr
    assert "docs/gpu/cuda.md: skipped by pyproject.toml:6: needs a GPU" in done.stderr
    assert "nothing to run" in done.stderr


def test_a_project_python_is_checked_never_run_on_the_host(tmp_path: Path, sandboxed: None) -> None:
    """The recipe `python:` attack, from pyproject.toml. Control: the script runs on the host when executed
    (the process backend does so), so the marker shows whether it ran."""
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.sh"
    evil.write_text(f'#!/bin/sh\necho ran > {marker}\nexec {sys.executable} "$@"\n')
    evil.chmod(0o755)
    (tmp_path / "pyproject.toml").write_text("[tool.sandrun]\npython = './evil.sh'\npackages = ['six']\n")
    (tmp_path / "r.yaml").write_text(RECIPE)
    env = {**os.environ, "SANDRUN_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    command = [sys.executable, "-m", "sandrun", "run", "r.yaml", "--backend"]
    done = subprocess.run(
        [*command, "local"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert "does not look like a Python" in done.stderr and not marker.exists()
    control = subprocess.run(
        [*command, "process"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert control.returncode == 3 and marker.read_text() == "ran\n"


# --- the Python API and the pytest plugin


def test_the_api_applies_the_project_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sandrun

    (tmp_path / "pyproject.toml").write_text("[tool.sandrun]\ntimeout = 7\nenv = {A = '1'}\n")
    (tmp_path / "r.yaml").write_text(RECIPE)
    monkeypatch.chdir(tmp_path)
    assert sandrun.load("r.yaml").timeout is None  # not unless asked
    assert sandrun.load("r.yaml", project=True).timeout == 7
    assert dict(sandrun.load("r.yaml", project=tmp_path).env) == {"A": "1"}
    assert sandrun.load("r.yaml", project=tmp_path / "pyproject.toml").timeout == 7
    (tmp_path / "other.toml").write_text("[project]\nname = 'sandrun-x'\n")
    with pytest.raises(sandrun.UsageError, match=r"has no \[tool.sandrun\] table"):
        sandrun.load("r.yaml", project=tmp_path / "other.toml")


def test_the_api_run_takes_project_env_and_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sandrun

    (tmp_path / "pyproject.toml").write_text("[tool.sandrun]\ntimeout = 0.3\nenv = {A = 'from project'}\n")
    (tmp_path / "r.yaml").write_text(
        "cells:\n  - code: import os; print(os.environ['A'])\n    expect: {stdout: from project}\n"
        "  - import time; time.sleep(1.5)\n"
    )
    monkeypatch.chdir(tmp_path)
    done = sandrun.run("r.yaml", backend="process", project=True, keep_going=True)
    assert [r.status.value for r in done.results] == ["passed", "timeout"]
    done = sandrun.run("r.yaml", backend="process", project=True, cell_timeout=30)
    assert [r.status.value for r in done.results] == ["passed", "passed"]


pytest_plugins = ("pytester",)


def test_the_pytest_plugin_applies_the_project(pytester: pytest.Pytester, sandboxed: None) -> None:
    import sandrun.pytest_recipes
    import sandrun.readers.markdown_doc
    import sandrun.readers.yaml_recipe

    del sandrun  # imported for pytester's module snapshot, not used here

    write_docs(pytester.path)
    result = pytester.runpytest("--sandrun", "docs/", "-rs", "-p", "no:cacheprovider")
    outcomes = {k: v for k, v in result.parseoutcomes().items() if k != "seconds"}
    assert outcomes == {"passed": 1, "failed": 1, "skipped": 1}, result.stdout.str()
    result.stdout.fnmatch_lines(["SKIPPED [1] docs/gpu/cuda.md:1: skipped by pyproject.toml:6: needs a GPU"])
    assert "timeout" in result.stdout.str()
    again = pytester.runpytest("--sandrun", "docs/", "--sandrun-timeout", "30", "-p", "no:cacheprovider")
    assert {k: v for k, v in again.parseoutcomes().items() if k != "seconds"} == {"passed": 2, "skipped": 1}


def test_the_readme_example_is_a_valid_table(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = next(b for b in readme.split("```toml\n")[1:] if "[[tool.sandrun.overrides]]" in b)
    found = project(tmp_path, example.split("```")[0])
    assert found.settings.match is MatchMode.WHITESPACE and found.paths[0] == "README.md"
    assert [o.skip for o in found.overrides] == [None, True]


def test_skipped_files_are_listed_in_json_and_junit_reports(tmp_path: Path, sandboxed: None) -> None:
    import jsonschema
    from junitparser import JUnitXml

    from sandrun.reports.json_report import load_schema

    write_docs(tmp_path)
    done = sandrun(
        tmp_path, "--report", "out.json", "--report", "out.xml", "--cell-timeout", "30", backend="local"
    )
    assert done.returncode == 0, done.stderr
    transcripts = json.loads((tmp_path / "out.json").read_text())
    skipped = [t for t in transcripts if t["recipe"]["format"] == "skipped"]
    assert [(t["recipe"]["path"], t["reason"]) for t in skipped] == [
        ("docs/gpu/cuda.md", "skipped by pyproject.toml:6: needs a GPU")
    ]
    assert skipped[0]["summary"]["skipped"] == 1 and skipped[0]["cells"][0]["status"] == "skipped"
    assert [t["status"] for t in skipped] == ["skipped"]  # not "passed": nothing of it ran
    assert {t["status"] for t in transcripts if t not in skipped} == {"passed"}
    for transcript in transcripts:
        jsonschema.validate(transcript, load_schema())
    cases = [case for suite in JUnitXml.fromfile(str(tmp_path / "out.xml")) for case in suite]
    reasons = [r.message for case in cases for r in case.result if type(r).__name__ == "Skipped"]
    assert reasons == ["skipped by pyproject.toml:6: needs a GPU"]


def test_when_every_recipe_is_skipped_the_report_still_says_so(tmp_path: Path) -> None:
    write_docs(tmp_path)
    done = sandrun(tmp_path, "docs/gpu/", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reason"] == "skipped by pyproject.toml:6: needs a GPU"
    assert json.loads(done.stdout)["status"] == "skipped"
    markdown = sandrun(tmp_path, "docs/gpu/", "--format", "md")
    assert markdown.returncode == 0, markdown.stderr
    assert "# `docs/gpu/cuda.md`: skipped\n" in markdown.stdout

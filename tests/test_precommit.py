"""The pre-commit hooks: their entry (`sandrun.precommit`), and `pre-commit try-repo` on a throwaway repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandrun.precommit import main, recipe_arguments
from tests.conftest import ROOT
from tests.security.sandboxes import local_unavailable

GOOD = 'cells:\n  - code: print(1 + 1)\n    expect: {stdout: "2"}\n'
STALE = 'cells:\n  - code: print(2 + 2)\n    expect: {stdout: "5"}\n'
WORKFLOW = "name: ci\non: push\njobs: {}\n"
PROSE = "# Changelog\n\nNothing to run here.\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, text in {
        "good.yaml": GOOD,
        "stale.yaml": STALE,
        "workflow.yml": WORKFLOW,
        "notes.md": PROSE,
    }.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_hooks_file_declares_both_hooks() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"sandrun", "sandrun-update"}
    assert hooks["sandrun-update"]["stages"] == ["manual"] and "stages" not in hooks["sandrun"]
    assert hooks["sandrun-update"]["entry"] == hooks["sandrun"]["entry"] + " --update"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["entry"].startswith("python -m sandrun.precommit")


def test_files_that_are_not_recipes_are_passed_over(files: Path) -> None:
    arguments = ["--backend", "process", *(str(files / n) for n in ("good.yaml", "workflow.yml", "notes.md"))]
    assert recipe_arguments(arguments) == (["--backend", "process", str(files / "good.yaml")], 1)


def test_no_recipe_among_the_files_is_nothing_to_do(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(files / "workflow.yml"), str(files / "notes.md")]) == 0
    assert "no recipes among the files given" in capsys.readouterr().err


def test_the_entry_runs_the_recipes_with_the_commands_exit_code(files: Path) -> None:
    assert main(["--backend", "process", str(files / "good.yaml"), str(files / "workflow.yml")]) == 0
    assert main(["--backend", "process", str(files / "good.yaml"), str(files / "stale.yaml")]) == 1
    assert main(["--backend", "process", "--update", str(files / "stale.yaml")]) == 0
    assert 'expect: {stdout: "4"}' in (files / "stale.yaml").read_text()


def test_pre_commit_try_repo_runs_the_hooks(tmp_path: Path, files: Path) -> None:
    """`pre-commit try-repo` installs this checkout as a hook repository and runs both hooks (the manual
    stage runs every hook): `sandrun` fails on the stale recipe and shows the diff, `sandrun-update` then
    rewrites it, and the files that are not recipes are left alone."""
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).with_name("pre-commit"))
    if not Path(pre_commit).exists():
        pytest.skip("pre-commit is not installed (pip install pre-commit, or the test extra)")
    if not (ROOT / ".git").exists():
        pytest.skip("this checkout is not a git repository, which pre-commit try-repo needs")
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    repository = files
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=repository, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repository, check=True)
    subprocess.run([*git, "commit", "-qm", "recipes"], cwd=repository, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    ran = subprocess.run(
        [pre_commit, "try-repo", str(ROOT), "--all-files", "--hook-stage", "manual"],
        cwd=repository,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 1, out
    assert "stale.yaml:3" in out and "-5\n" in out and "+4\n" in out, out
    assert "sandrun --update" in out and "files were modified by this hook" in out, out
    assert 'expect: {stdout: "4"}' in (repository / "stale.yaml").read_text()
    assert (repository / "workflow.yml").read_text() == WORKFLOW
    assert (repository / "good.yaml").read_text() == GOOD

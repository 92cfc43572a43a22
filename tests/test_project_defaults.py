"""`sandrun run` with no paths runs what pyproject.toml's `[tool.sandrun] paths` lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def sandrun(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sandrun", "run", "--backend", "process", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


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
    assert "pyproject.toml:1: unknown key 'path' in [tool.sandrun]" in done.stderr
    assert "did you mean 'paths'?" in done.stderr

"""Promises 2 and 5 (filesystem, environment) against the recipe itself as the attacker, through the CLI.

A recipe is untrusted, and some of its fields reach the host before the sandbox exists: `files` (host files
copied in), `python` (whose installation is bound in) and `env` (the environment of the processes that
build the sandbox). None of them may expose a host file the sandbox could not read on its own, nor run
anything on the host. The control shows an ordinary `files` entry being delivered.

A recipe "succeeds" at an attack only if a secret the test planted shows up in what sandrun printed (the
transcript on stdout, the progress on stderr) or a marker file appears on the host; refusing the recipe
is a secure outcome too.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.security.sandboxes import CliRun, sandrun_cli

SHOW = """
try:
    with open({name!r}) as f:
        print("CONTENT:", f.read())
except OSError as e:
    print("unreadable:", e)
"""


def recipe(folder: Path, body: str, cells: list[str]) -> Path:
    """Write `recipe.yaml` in `folder`: the YAML `body` (top-level keys) followed by `cells`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [textwrap.dedent(body).strip(), "cells:"]
    for cell in cells:
        lines.append("  - |")
        lines += ["    " + line for line in textwrap.dedent(cell).strip().splitlines()]
    path = folder / "recipe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def leaked(result: CliRun, secret: str) -> bool:
    return secret in result.stdout or secret in result.stderr


@pytest.fixture
def vault(tmp_path: Path) -> tuple[Path, str]:
    """A private host directory (0700) holding an owner-only file (0600) with a secret in it."""
    folder = tmp_path / "vault"
    folder.mkdir(mode=0o700)
    secret = "vault-" + secrets.token_hex(12)
    (folder / "key").write_text(secret + "\n")
    (folder / "key").chmod(0o600)
    return folder, secret


def test_control_files_entry_is_delivered(tmp_path: Path) -> None:
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "data.txt").write_text("ordinary data\n")
    path = recipe(folder, "files: [data.txt]", [SHOW.format(name="data.txt")])
    result = sandrun_cli(path, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "CONTENT: ordinary data" in result.stdout


@pytest.mark.parametrize("how", ["file-symlink", "directory-symlink-with-workdir"])
def test_files_entry_cannot_smuggle_a_host_file(tmp_path: Path, vault: tuple[Path, str], how: str) -> None:
    folder, secret = vault
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    extra: list[str] = []
    if how == "file-symlink":
        (recipe_dir / "data.txt").symlink_to(folder / "key")
        name = "data.txt"
    else:
        (recipe_dir / "data").symlink_to(folder, target_is_directory=True)
        name = "data/key"
        workdir = tmp_path / "work"
        workdir.mkdir()
        extra = ["--workdir", str(workdir)]
    path = recipe(recipe_dir, f"files: [{name}]", [SHOW.format(name=name)])
    result = sandrun_cli(path, *extra, cwd=recipe_dir)
    assert not leaked(result, secret), "the recipe read a host file it named through a symlink"
    if extra:  # nor may a world-readable copy of it be left behind in the work directory
        copies = [p for p in Path(extra[1]).rglob("*") if p.is_file() and secret in p.read_text()]
        assert copies == []


def test_files_entry_cannot_smuggle_sandruns_environment(tmp_path: Path) -> None:
    secret = "env-" + secrets.token_hex(12)
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "settings.txt").symlink_to("/proc/self/environ")
    path = recipe(recipe_dir, "files: [settings.txt]", [SHOW.format(name="settings.txt")])
    result = sandrun_cli(path, cwd=recipe_dir, env={**os.environ, "SANDRUN_TEST_HOST_SECRET": secret})
    assert not leaked(result, secret)


def test_python_field_cannot_bind_a_host_directory(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "inner").mkdir()
    secret = "hidden-" + secrets.token_hex(12)
    target = hidden / "inner" / "notes.txt"
    target.write_text(secret + "\n")
    target.chmod(0o644)  # readable by anyone who can reach it; the 0700 parent is what protects it
    recipe_dir = tmp_path / "recipe"
    fake_venv = recipe_dir / "venv"
    (fake_venv / "bin").mkdir(parents=True)
    (fake_venv / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    (fake_venv / "pyvenv.cfg").write_text(f"home = {hidden / 'inner' / 'bin'}\n")
    path = recipe(recipe_dir, f"python: {fake_venv / 'bin' / 'python'}", [SHOW.format(name=str(target))])
    result = sandrun_cli(path, cwd=recipe_dir)
    assert not leaked(result, secret), "the recipe's interpreter choice bound a private host directory in"


def test_recipe_env_does_not_act_on_the_host(tmp_path: Path) -> None:
    recipe_dir = tmp_path / "recipe"
    out = tmp_path / "host-side" / "ld-debug"
    out.parent.mkdir()
    path = recipe(recipe_dir, f'env: {{LD_DEBUG: "libs", LD_DEBUG_OUTPUT: "{out}"}}', ["print('hello')"])
    result = sandrun_cli(path, cwd=recipe_dir)
    created = sorted(p.name for p in out.parent.iterdir())
    assert created == [], f"host-side processes honoured the recipe's LD_DEBUG_OUTPUT: {created}"
    assert result.returncode in (0, 3)  # 3: the loader's debug output inside broke the sandbox's own start


PRELOAD_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ran-as-uid-%d-pid-%d", MARK_DIR, (int)getuid(), (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}
"""


def test_recipe_env_cannot_preload_code_on_the_host(tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the library to preload")
    marks = tmp_path / "marks"
    marks.mkdir()
    source = tmp_path / "mark.c"
    source.write_text(PRELOAD_C)
    library = tmp_path / "mark.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", f'-DMARK_DIR="{marks}"', "-o", str(library), str(source)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    recipe_dir = tmp_path / "recipe"
    path = recipe(recipe_dir, f'env: {{LD_PRELOAD: "{library}"}}', ["print('hello')"])
    sandrun_cli(path, cwd=recipe_dir)
    ran = sorted(p.name for p in marks.iterdir())
    assert ran == [], f"the recipe's library ran on the host: {ran}"


WRITE_MARKER = """
with open({marker!r}, "w") as f:
    f.write("written by the recipe")
"""


def run_without_backend_option(path: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m sandrun run PATH ARGS` with no `--backend`: the recipe's own choice is what is tested."""
    return subprocess.run(
        [sys.executable, "-m", "sandrun", "run", str(path), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("declared_in", ["recipe", "pyproject"])
def test_a_recipe_cannot_choose_to_run_unsandboxed(tmp_path: Path, declared_in: str) -> None:
    marker = tmp_path / "host-marker"
    folder = tmp_path / "project"
    if declared_in == "recipe":
        path = recipe(folder, "backend: process", [WRITE_MARKER.format(marker=str(marker))])
    else:
        path = recipe(folder, "name: plain", [WRITE_MARKER.format(marker=str(marker))])
        (folder / "pyproject.toml").write_text('[tool.sandrun]\nbackend = "process"\n')
        (folder / ".git").mkdir()  # the project's top: no pyproject above it is read
    result = run_without_backend_option(path, cwd=folder)
    assert result.returncode == 2, result.stderr
    assert "isolates nothing" in result.stderr and "--backend process" in result.stderr
    assert not marker.exists(), "the recipe ran on the host because it asked to"


def test_control_the_user_may_choose_the_process_backend(tmp_path: Path) -> None:
    marker = tmp_path / "host-marker"
    folder = tmp_path / "project"
    path = recipe(folder, "backend: process", [WRITE_MARKER.format(marker=str(marker))])
    result = run_without_backend_option(path, "--backend", "process", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "written by the recipe"

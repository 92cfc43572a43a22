"""`python:` attacks: a recipe's interpreter is checked on the host, never run there, and cannot make the
sandbox bind the host's `/` (a symbolic link on its path, `//bin/python3`). Controls on the `process`
backend, which isolates nothing, show each path is a working interpreter or runs there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from sandrun.backends.local_host import fresh_uid, launcher
from tests.security.sandboxes import CliRun, root_only, sandrun_cli


def on_process(recipe: Path, env: dict[str, str] | None = None) -> CliRun:
    """`sandrun run RECIPE --backend process` from the recipe's directory: the control runs."""
    proc = subprocess.run(
        [sys.executable, "-m", "sandrun", "run", recipe.name, "--backend", "process", "--format", "json"],
        cwd=recipe.parent,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr, json.loads(proc.stdout) if proc.stdout else None)


EVIL_SH = """#!/bin/sh
echo ran > {marker}
exec {python} "$@"
"""


@pytest.mark.parametrize("backend", ["local", "process"])
def test_a_recipe_python_is_never_run_on_the_host_to_learn_its_version(tmp_path: Path, backend: str) -> None:
    """Control: the process backend (which isolates nothing) runs evil.sh on the host."""
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.sh"
    evil.write_text(EVIL_SH.format(marker=marker, python=sys.executable))
    evil.chmod(0o755)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("python: ./evil.sh\npackages: [six]\ncells:\n  - print(1)\n")
    env = {**os.environ, "SANDRUN_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    done = sandrun_cli(recipe, cwd=tmp_path, env=env) if backend == "local" else on_process(recipe, env)
    assert done.returncode == 3, done.stderr
    if backend == "local":
        assert not marker.exists()
        assert done.transcript is not None and "does not look like a Python" in done.transcript["reason"]
    else:
        assert marker.read_text() == "ran\n"


@pytest.mark.parametrize("python", ["rootlink/bin/python3", "//bin/python3"])
@pytest.mark.parametrize("backend", ["local", "process"])
def test_a_python_path_that_would_bind_the_hosts_root_is_refused(
    tmp_path: Path, python: str, backend: str
) -> None:
    """Control: the path is a working interpreter (the process backend runs the recipe with it)."""
    (tmp_path / "rootlink").symlink_to("/")
    python = python.replace("rootlink", f"{tmp_path}/rootlink")  # absolute: the process backend's cwd moves
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"python: {python}\ncells:\n  - code: print('ran')\n    expect: {{stdout: ran}}\n")
    done = sandrun_cli(recipe, cwd=tmp_path) if backend == "local" else on_process(recipe)
    if backend == "process":
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 3, done.stderr
    assert done.transcript is not None
    reason = done.transcript["reason"]
    expected = "symbolic link" if "rootlink" in python else "/ does not look like a Python installation"
    assert expected in reason, reason


def test_the_legitimate_interpreters_still_work(tmp_path: Path) -> None:
    """The host's own interpreter (a venv whose bin/python links to its base), /usr/bin/python3, and a
    venv made next to the recipe, named relative to it."""
    import venv

    venv.create(tmp_path / "venv", symlinks=True)
    recipe = tmp_path / "recipe.yaml"
    candidates = [sys.executable, "venv/bin/python"]
    if Path("/usr/bin/python3").exists():
        candidates.append("/usr/bin/python3")
    for python in candidates:
        recipe.write_text(f"python: {python}\ncells:\n  - code: print('ran')\n    expect: {{stdout: ran}}\n")
        done = sandrun_cli(recipe, cwd=tmp_path)
        assert done.returncode == 0, (python, done.stderr, textwrap.shorten(done.stdout, 500))


def test_a_recipe_relative_venv_with_packages_builds_and_runs(tmp_path: Path) -> None:
    """`python: venv/bin/python` (relative to where sandrun runs) is asked its version in a sandbox, and
    the environment is made from it there."""
    import venv

    from tests.factories import DEMO, make_wheel

    venv.create(tmp_path / "venv", symlinks=True)
    make_wheel(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"python: venv/bin/python\npackages: [{DEMO}-0.1-py3-none-any.whl]\n"
        f"cells:\n  - code: import {DEMO}; print({DEMO}.VALUE)\n    expect: {{stdout: '42'}}\n"
    )
    env = {**os.environ, "SANDRUN_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    done = sandrun_cli(recipe, cwd=tmp_path, env=env)
    assert done.returncode == 0, (done.stderr, done.transcript and done.transcript.get("reason"))


@root_only
def test_the_root_launcher_stages_more_than_four_directories(tmp_path: Path) -> None:
    """A build stages many unreachable directories; in sh `$10` is `$1` then "0", so each must be ${N}."""
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)  # the sandbox's uid cannot pass here: only the staged points reach below
    staging = Path(tempfile.mkdtemp(prefix="sandrun-test-"))  # reachable, like a sandbox's staging
    try:
        staging.chmod(0o755)
        binds = []
        for number in range(6):
            source = hidden / f"dir{number}"
            source.mkdir()
            source.chmod(0o755)
            (source / "name").write_text(f"source {number}\n")
            (source / "name").chmod(0o644)
            (staging / f"point{number}").mkdir()
            binds.append((str(source), str(staging / f"point{number}")))
        reading = ["/bin/cat", *(f"{point}/name" for _, point in binds)]
        command = launcher(binds, fresh_uid(), reading)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(staging)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"source {number}\n" for number in range(6))

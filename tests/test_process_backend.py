"""The process backend: no isolation, but a clean environment, a fresh workdir, and nothing left running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions, isolates_nothing
from sandrun.errors import BackendError
from sandrun.session import CellRequest, Session


def start(**options: object) -> Session:
    return Session.start(get_backend("process"), SandboxOptions(**options))  # type: ignore[arg-type]


def value_of(session: Session, code: str) -> str | None:
    outcome = session.run(CellRequest(textwrap.dedent(code), "recipe.py", 1, 10))
    assert outcome.status == "ok", outcome.error
    return outcome.value


def test_the_host_environment_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDRUN_TEST_SECRET", "hunter2")
    session = start(env={"GREETING": "hello"})
    try:
        env = eval(value_of(session, "import os\ndict(os.environ)") or "{}")
    finally:
        session.close()
    assert "SANDRUN_TEST_SECRET" not in env
    assert "hunter2" not in repr(env)
    assert env["GREETING"] == "hello"
    assert set(env) <= {"PATH", "HOME", "LANG", "GREETING", "SANDRUN_SESSION", "MPLBACKEND"}


def test_each_run_gets_a_fresh_workdir_that_is_removed_afterwards() -> None:
    first, second = start(), start()
    try:
        cwd1 = value_of(first, "import os\nopen('left.txt', 'w').write('x')\nos.getcwd()")
        cwd2 = value_of(second, "import os\nsorted(os.listdir('.')), os.getcwd()")
    finally:
        first.close()
        second.close()
    assert cwd1 and cwd2
    assert eval(cwd2)[0] == []
    assert eval(cwd1) != eval(cwd2)[1]
    assert not Path(eval(cwd1)).exists()


def test_a_given_workdir_is_used_and_kept(tmp_path: Path) -> None:
    session = start(workdir=tmp_path)
    try:
        value_of(session, "open('result.txt', 'w').write('42')")
    finally:
        session.close()
    assert (tmp_path / "result.txt").read_text() == "42"


def test_every_process_the_run_started_is_killed_even_daemons(tmp_path: Path) -> None:
    session = start()
    pidfile = tmp_path / "pids"
    value_of(
        session,
        f"""
        import os, subprocess, sys, time
        plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "a").write(f"{{plain.pid}} ")
        if os.fork() == 0:            # a classic double-fork daemon that leaves the process group
            os.setsid()
            if os.fork() == 0:
                open({str(pidfile)!r}, "a").write(f"{{os.getpid()}} ")
                time.sleep(600)
            os._exit(0)
        while len(open({str(pidfile)!r}).read().split()) < 2:
            time.sleep(0.01)
        """,
    )
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) >= 2
    session.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)]


def alive(pid: int) -> bool:
    """True if `pid` is a live (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return ") Z" not in stat


def test_a_missing_interpreter_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="cannot start /nonexistent/python"):
        start(python="/nonexistent/python")


def test_an_interpreter_that_exits_at_once_is_explained(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no python here' >&2\nexit 7\n")
    fake.chmod(0o755)
    with pytest.raises(BackendError) as caught:
        start(python=str(fake))
    message = str(caught.value)
    assert "exited with status 7" in message or "stopped reading" in message
    assert "no python here" in message


def test_the_driver_runs_in_its_own_session_so_ctrl_c_does_not_reach_it() -> None:
    session = start()
    try:
        sid = value_of(session, "import os\nos.getsid(0)")
    finally:
        session.close()
    assert sid is not None and int(sid) != os.getsid(0)


def test_every_run_says_that_it_isolates_nothing(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("cells:\n  - print('hi')\n")
    command = [sys.executable, "-m", "sandrun", "run", str(recipe), "--backend", "process", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ISOLATES NOTHING" in result.stderr


def test_only_the_process_backend_isolates_nothing() -> None:
    assert isolates_nothing(get_backend("process"))
    assert not any(isolates_nothing(get_backend(name)) for name in ("local", "modal"))


def test_stderr_is_a_pipe_read_while_waiting_and_only_its_tail_is_kept(tmp_path: Path) -> None:
    import sys

    from sandrun.backends.process import TAIL, ProcessChannel

    script = (
        "import os\n"
        "for _ in range(160):\n"  # 10 MiB: a child blocks on a pipe that nobody reads after 64 KiB
        "    os.write(2, b'x' * 65536)\n"
        "os.write(2, b'the end')\n"
        "print(os.readlink('/proc/self/fd/2'))\n"
    )
    channel = ProcessChannel.spawn([sys.executable, "-c", script], {}, tmp_path, token="t")
    try:
        chunks = []
        while (chunk := channel.receive(30)) != b"":
            assert chunk is not None, "the child is stuck writing its stderr"
            chunks.append(chunk)
        assert b"".join(chunks).startswith(b"pipe:")  # not a host file that a sandbox could reopen
        tail = channel.diagnostics()
        assert tail.endswith("the end") and len(tail) <= TAIL
    finally:
        channel.close()
    assert channel.diagnostics().endswith("the end")  # kept after close

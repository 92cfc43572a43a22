"""Promise 3: processes. The sandbox has its own PID namespace: it sees only its own few processes, cannot
see or signal a host process (one this test starts, nor sandrun itself, not even with kill(-1)), and every
process a recipe started, daemons included, is gone once the session is closed.

Processes started inside are found from the host by a unique marker in their command line (the duration
given to `sleep`); seeing them there before `close()` is the control that proves the search works.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from sandrun.backends.base import SandboxOptions
from sandrun.backends.process import ProcessBackend
from sandrun.session import Session
from tests.security.sandboxes import (
    StartSandbox,
    host_pids_with,
    kill_leftovers,
    run,
    value,
    wait_for_pids,
    wait_until_gone,
)

HOST_MARK = f"60.{secrets.randbelow(10**12):012d}"
"""The `sleep` duration of the host process, to find its command line."""


@pytest.fixture
def host_sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A host process the sandbox must neither see nor kill."""
    proc = subprocess.Popen(["sleep", HOST_MARK])
    yield proc
    proc.kill()
    proc.wait()


def test_sandbox_sees_only_its_own_processes(
    sandbox: StartSandbox, host_sleeper: subprocess.Popen[bytes]
) -> None:
    result = value(
        run(
            sandbox(),
            f"""
            import os
            pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
            cmdlines = []
            for pid in pids:
                try:
                    with open(f"/proc/{{pid}}/cmdline", "rb") as f:
                        cmdlines.append(f.read())
                except OSError:
                    pass
            marked = any({HOST_MARK.encode()!r} in line for line in cmdlines)
            (pids, os.getpid(), marked, {host_sleeper.pid} in pids, {os.getpid()} in pids)
            """,
        )
    )
    pids, own, sees_sleeper_cmdline, sees_sleeper_pid, sees_sandrun = result
    assert len(pids) <= 5, pids  # bubblewrap's init and the driver
    assert own <= 5
    assert not sees_sleeper_cmdline
    assert not sees_sleeper_pid
    assert not sees_sandrun
    assert host_pids_with(HOST_MARK.encode()) == [host_sleeper.pid], "control: the host sees it"


def test_sandbox_cannot_signal_host_processes(
    sandbox: StartSandbox, host_sleeper: subprocess.Popen[bytes]
) -> None:
    targets = {"sleeper": host_sleeper.pid, "sandrun": os.getpid(), "sandrun_parent": os.getppid()}
    result = value(
        run(
            sandbox(),
            f"""
            import os, signal
            def kill(pid, sig):
                try:
                    os.kill(pid, sig)
                    return "sent"
                except OSError as e:
                    return type(e).__name__
            results = {{name: kill(pid, 0) for name, pid in {targets!r}.items()}}
            results["kill_all"] = kill(-1, signal.SIGKILL)  # everything this uid may signal
            results["kill_sleeper"] = kill({host_sleeper.pid}, signal.SIGKILL)
            results
            """,
        )
    )
    for name in targets:
        assert result[name] == "ProcessLookupError", (name, result)
    assert result["kill_sleeper"] == "ProcessLookupError"
    assert result["kill_all"] == "ProcessLookupError"  # nobody but init and itself: nothing to signal
    assert host_sleeper.poll() is None, "the host process was killed from inside the sandbox"


DAEMONS = """
import os, signal, subprocess

def daemonize(argv):
    # Double fork, new session, empty environment (no SANDRUN_SESSION marker), deaf to TERM and HUP.
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                os.execve(argv[0], argv, {})
        finally:
            os._exit(0)
    os.waitpid(pid, 0)

daemonize(["/usr/bin/sleep", MARK])
background = subprocess.Popen(["sleep", MARK], start_new_session=True)
"""


@pytest.mark.parametrize("backend", ["local", "process"])
def test_every_process_is_gone_after_close(sandbox: StartSandbox, backend: str) -> None:
    mark = f"59.{secrets.randbelow(10**12):012d}"  # a unique `sleep` duration; under a minute if leaked
    needle = f"sleep\0{mark}\0".encode()
    try:
        session = sandbox(backend=backend)
        outcome = run(session, DAEMONS.replace("MARK", repr(mark)))
        assert outcome.status == "ok", outcome.error
        assert len(wait_for_pids(needle, 2, 5.0)) == 2, (
            "control: the host sees the sandbox's daemons while it runs"
        )
        session.close()
        assert wait_until_gone(needle, 1.0) == [], "processes started in the sandbox outlived close()"
    finally:
        kill_leftovers(needle)


@pytest.mark.parametrize("backend", ["local", "process"])
def test_processes_are_gone_after_the_sandbox_dies(sandbox: StartSandbox, backend: str) -> None:
    """Even when the driver dies first (killed from inside), its daemons do not survive the session."""
    mark = f"59.{secrets.randbelow(10**12):012d}"
    needle = f"sleep\0{mark}\0".encode()
    try:
        session = sandbox(backend=backend)
        assert run(session, DAEMONS.replace("MARK", repr(mark))).status == "ok"
        assert len(wait_for_pids(needle, 2, 5.0)) == 2
        died = run(session, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert died.status == "crashed"
        assert session.dead_reason and "SIGKILL" in session.dead_reason
        session.close()
        assert wait_until_gone(needle, 1.0) == []
    finally:
        kill_leftovers(needle)


@pytest.mark.parametrize("reaped", [True, False], ids=["reaper", "control-without-reaper"])
def test_process_backend_daemons_do_not_outlive_close(reaped: bool) -> None:
    """The process backend isolates nothing, but kills everything the run started: its reaper (a child
    subreaper) catches the daemon that left the process group and emptied its environment. Control:
    without the reaper, that daemon survives the run."""
    if not ProcessBackend.reaped:
        pytest.skip("the reaper needs Linux (PR_SET_CHILD_SUBREAPER)")
    mark = f"59.{secrets.randbelow(10**12):012d}"
    needle = f"sleep\0{mark}\0".encode()
    backend = ProcessBackend()
    backend.reaped = reaped
    session = Session.start(backend, SandboxOptions())
    try:
        assert run(session, DAEMONS.replace("MARK", repr(mark))).status == "ok"
        assert len(wait_for_pids(needle, 2, 5.0)) == 2, "control: the host sees both while the run lasts"
        session.close()
        survivors = host_pids_with(needle)  # close() returns once the reaper has reaped everything
        assert len(survivors) == (0 if reaped else 1), survivors
    finally:
        session.close()
        kill_leftovers(needle)

"""`sandrun.backends.reaper`, the program the process backend runs the driver under, run as it is run.

It passes the driver's exit status on (a death by signal N as 128 + N), explains a program it cannot
start, lets go of its stdout so the host sees the end of the driver's output, and on SIGTERM kills the
driver and everything the driver started, daemons included, before it exits.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys

import pytest

from sandrun.backends.process import REAPER
from tests.security.sandboxes import host_pids_with, kill_leftovers, wait_for_pids

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the reaper needs PR_SET_CHILD_SUBREAPER")

DAEMON = """
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execve("/usr/bin/sleep", ["sleep", sys.argv[1]], {})
    os._exit(0)
os.wait()
print("daemon started", flush=True)
sys.stdin.read()  # until the test closes it
"""


def reaper(*argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(REAPER), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.parametrize(("code", "expected"), [("raise SystemExit(7)", 7), ("pass", 0)])
def test_the_drivers_exit_status_is_passed_on(code: str, expected: int) -> None:
    proc = reaper(sys.executable, "-c", code)
    proc.communicate(timeout=30)
    assert proc.returncode == expected


def test_a_death_by_signal_comes_back_as_128_plus_the_signal() -> None:
    proc = reaper(sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGSEGV


def test_a_program_that_cannot_start_is_explained() -> None:
    proc = reaper("/nonexistent/python", "-c", "pass")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 127
    assert b"cannot start /nonexistent/python" in err


def test_the_driver_has_stdin_and_stdout_and_the_end_of_output_is_seen() -> None:
    proc = reaper(sys.executable, "-c", "import sys; print(sys.stdin.read().upper())")
    out, _ = proc.communicate(b"hello", timeout=30)  # returns at EOF: the reaper holds no stdout copy
    assert out == b"HELLO\n"


@pytest.mark.parametrize("how", ["driver-ends", "sigterm"])
def test_daemons_of_the_driver_are_killed(how: str) -> None:
    mark = f"59.{secrets.randbelow(10**12):012d}"
    needle = f"sleep\0{mark}\0".encode()
    try:
        proc = reaper(sys.executable, "-c", DAEMON, mark, start_new_session=True)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"daemon started\n"
        assert len(wait_for_pids(needle, 1, 5.0)) == 1, "control: the daemon runs"
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)  # closes stdin: the driver ends, if it still runs
        assert proc.returncode == (0 if how == "driver-ends" else 128 + signal.SIGKILL)
        assert host_pids_with(needle) == []  # the reaper exits only once it has reaped them all
    finally:
        kill_leftovers(needle)


def test_control_a_plain_parent_leaves_the_daemon_behind() -> None:
    mark = f"59.{secrets.randbelow(10**12):012d}"
    needle = f"sleep\0{mark}\0".encode()
    try:
        proc = subprocess.run([sys.executable, "-c", DAEMON, mark], stdout=subprocess.DEVNULL, timeout=30)
        assert proc.returncode == 0
        assert len(wait_for_pids(needle, 1, 5.0)) == 1
    finally:
        kill_leftovers(needle)

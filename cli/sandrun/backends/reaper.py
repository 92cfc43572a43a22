"""The process backend's reaper: a small program between sandrun and the driver that outlives every process
the run started, and kills them all at the end. Linux only; stdlib only, imports nothing from sandrun (it
runs as `python -I -S reaper.py ARGV...`, one per run, so that runs in parallel stay apart).

It makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`): a daemon that double-forks, calls `setsid`
and clears its environment is still re-parented to it, not to the host's init. It starts ARGV with its own
stdin, stdout and stderr, lets go of stdin and stdout (so the host sees the end of the driver's output when
the driver ends), and waits. When the driver ends, or when the host sends SIGTERM (or SIGHUP, SIGINT), it
SIGKILLs every child it has, reaps them, and repeats until no child is left: children of a killed process
come to it in turn. It then exits with the driver's status, a death by signal N as status 128 + N.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def children() -> list[int]:
    """PIDs of this process's children (those re-parented to it included), zombies too."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as listing:
            return [int(pid) for pid in listing.read().split()]
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: look at every process's parent
        pass
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(fields[1]) == me:
            found.append(int(entry))
    return found


def kill_all() -> None:
    """SIGKILL every child and reap, until there is none: each death re-parents the dead one's children."""
    while True:
        for pid in children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:  # none has ended yet: wait a moment for one (never forever: a listing may miss one)
            signal.sigtimedwait({signal.SIGCHLD}, 0.05)


def exit_like(status: int) -> int:
    """The exit code that tells the host how the driver ended (status 128 + N for a death by signal N)."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def wait_for(driver: int) -> int:
    """The driver's wait status once it has ended; if the host asks to stop first, it is killed now.
    Signals are blocked and taken here one at a time, so nothing interrupts what follows."""
    while True:
        info = signal.sigwaitinfo({signal.SIGCHLD, *STOP_SIGNALS})
        if info.si_signo != signal.SIGCHLD:
            with contextlib.suppress(ProcessLookupError):
                os.kill(driver, signal.SIGKILL)
            return os.waitpid(driver, 0)[1]  # how it ended: killed now, or on its own just before
        while True:  # one SIGCHLD may stand for several children: reap all that have ended
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == driver:
                return status
            if pid == 0:
                break


def main(argv: list[str]) -> int:
    """Run `argv` as the driver; return its exit code once nothing it started is left."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, *STOP_SIGNALS})
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"sandrun reaper: prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 126
    try:
        driver = os.posix_spawnp(argv[0], argv, dict(os.environ), setsigmask=())
    except OSError as exc:
        print(f"cannot start {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 0)
    os.dup2(quiet, 1)
    status = wait_for(driver)
    kill_all()
    return exit_like(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The `process` backend: the driver as a plain child process. It ISOLATES NOTHING.

Meant for debugging and for platforms without namespaces. It still gives each run a fresh working directory,
a clean environment, and kills every process the run started: on Linux the driver runs under a reaper of
its own (`sandrun.backends.reaper`, a child subreaper), which daemons cannot leave; elsewhere, and as a last
resort, by process group and by a marker variable for processes that left the group.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sandrun import safefs
from sandrun.backends.base import SandboxOptions
from sandrun.errors import BackendError
from sandrun.model import NO_ISOLATION

ChannelT = TypeVar("ChannelT", bound="ProcessChannel")

REAPER = Path(__file__).with_name("reaper.py")
"""The program that runs the driver on Linux, and kills everything the run started when it ends."""
REAP_DEADLINE = 5.0
"""Seconds the reaper has to kill and reap everything; then its process group is killed, as a last resort."""
SIGNAL_CHECK = 0.25
"""Longest single wait, in seconds, so that Python sees a signal that arrived just before the wait began."""
TAIL = 4096
"""Bytes of a child's stderr kept for diagnostics (its last words); the rest is read and dropped."""
STDERR_BUDGET = 1 << 20
"""Most bytes of stderr read in one go when a diagnosis is asked for, so that a writer cannot keep us busy."""
INPUT_PIPE_SIZE = 1 << 18
"""Bytes the pipe to a child's stdin holds (64 KiB by default): the bootstrap's input fits, so that it is
handed over in one write and the host goes on while the sandbox starts."""
MARKER = "SANDRUN_SESSION"
"""Set in every sandbox's environment so that strays can be found and killed at the end."""


def minimal_env(python: str, home: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a sandbox: PATH (interpreter's directory first), HOME, LANG, plus `extra`."""
    path_dirs = [str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    env = {"PATH": os.pathsep.join(dict.fromkeys(path_dirs)), "HOME": home, "LANG": "C.UTF-8"}
    env.update(extra)
    return env


class ProcessBackend:
    """Runs the driver as a child process of sandrun itself."""

    name = "process"
    isolation = NO_ISOLATION
    installs_packages = False
    reaped = sys.platform == "linux"
    """Whether the driver runs under the reaper; without it (other systems), strays are found by process
    group and marker variable, which a daemon with its own session and an empty environment escapes."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        """Takes no settings; `env` is accepted like every backend's."""

    def unavailable_reason(self) -> str | None:
        """Always available: it needs nothing but a Python interpreter."""
        return None

    def versions(self) -> dict[str, str]:
        """The host's Python, which is the default interpreter."""
        return {"python": sys.version.split()[0]}

    def driver_limits(self, options: SandboxOptions) -> dict[str, int]:
        """None: without namespaces, a process limit would count every process of the user."""
        return {}

    def default_python(self) -> str:
        """The interpreter sandrun itself runs on."""
        return sys.executable

    def start(self, argv: Sequence[str], options: SandboxOptions) -> ProcessChannel:
        """Start `argv` in a fresh working directory (or the given one) with a clean environment."""
        owned = options.workdir is None
        workdir = Path(tempfile.mkdtemp(prefix="sandrun-")) if options.workdir is None else options.workdir
        cleanup = (lambda: shutil.rmtree(workdir, ignore_errors=True)) if owned else None
        try:
            copy_files(options.files, workdir, options.files_from)
        except BaseException:
            if cleanup:
                cleanup()
            raise
        token = uuid.uuid4().hex
        env = minimal_env(argv[0], str(workdir), options.env) | {MARKER: token}
        if not self.reaped:
            return ProcessChannel.spawn(argv, env, workdir, token, cleanup=cleanup)
        if not shutil.which(argv[0], path=env["PATH"]):
            if cleanup:
                cleanup()
            raise BackendError(f"cannot start {argv[0]}: {os.strerror(errno.ENOENT)}", hint="check --python")
        command = [sys.executable, "-I", "-S", str(REAPER), *argv]
        return ReapedChannel.spawn(command, env, workdir, token, cleanup=cleanup)


def run_as_kwargs(uid: int | None) -> dict[str, Any]:
    """`subprocess.Popen` arguments that start the child as `uid` with no supplementary groups."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def copy_files(files: Mapping[str, Path], workdir: Path, files_from: Path | None = None) -> None:
    """Copy each host file to its name inside `workdir`; BackendError says which one could not be.

    A run with `--workdir` may have left links there: none is followed (see `sandrun.safefs`). Each file
    replaces what is at its name; a link among the directories above it is refused.
    """
    try:
        directory = safefs.open_directory(workdir)
    except OSError as exc:
        raise BackendError(f"cannot open the work directory {workdir}: {exc.strerror}") from None
    try:
        for name, source in files.items():
            with os.fdopen(open_input_file(source, files_from), "rb") as reader:
                try:
                    safefs.copy_in(directory, name, reader.fileno())
                except (OSError, ValueError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) else "not a relative path"
                    message = f"cannot copy {source} into the work directory as {name}: {why}"
                    raise BackendError(message) from None
    finally:
        os.close(directory)


def open_input_file(path: Path, files_from: Path | None = None) -> int:
    """Open a recipe's input file for reading: a regular file, reached through no symbolic link that
    leads out of `files_from` (the recipe's directory; default: the file's own directory, so only the file
    itself must not be a link).

    When sandrun is root, only files any user could read: root must not carry a private file into a sandbox
    because a recipe asked for it.
    """
    root = path.parent if files_from is None else files_from
    try:
        fd = safefs.open_below(root, path.relative_to(root))
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else f"it does not lie in {root}"
        raise BackendError(f"cannot open {path} for the sandbox: {why}") from None
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif os.geteuid() == 0 and not info.st_mode & stat.S_IROTH:
        problem = "is not readable by other users, and sandrun runs as root"
    if problem:
        os.close(fd)
        raise BackendError(f"{path} {problem}: it is not copied into the sandbox")
    return fd


class ProcessChannel:
    """A child process's stdin/stdout as a `Channel`; its stderr is a pipe whose tail is kept for diagnostics.

    Shared by the backends that run a local process (`process`, and `local` which runs bubblewrap). No file
    of the host is ever the child's: a stderr that were a file could be reopened from inside the sandbox
    (`/proc/PID/fd/2`) and filled without limit. The pipe is read whenever the channel waits, without a
    thread, and only its last `TAIL` bytes are kept; a writer that fills it just blocks itself.
    """

    def __init__(self, proc: subprocess.Popen[bytes], token: str, cleanup: Callable[[], None] | None) -> None:
        self.proc = proc
        self.token = token
        self.cleanup = cleanup
        self.closed = False
        self.tail = bytearray()
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.stdin_fd = proc.stdin.fileno()
        self.stdout_fd = proc.stdout.fileno()
        self.stderr_fd: int | None = proc.stderr.fileno()
        os.set_blocking(self.stdin_fd, False)  # a write must never block past its deadline
        if sys.platform == "linux":
            with contextlib.suppress(OSError):  # past the system's limit for this user: the default stays
                fcntl.fcntl(self.stdin_fd, fcntl.F_SETPIPE_SZ, INPUT_PIPE_SIZE)
        os.set_blocking(self.stderr_fd, False)

    @classmethod
    def spawn(
        cls: type[ChannelT],
        argv: Sequence[str],
        env: dict[str, str],
        cwd: Path,
        token: str,
        pass_fds: Sequence[int] = (),
        cleanup: Callable[[], None] | None = None,
        run_as: int | None = None,
    ) -> ChannelT:
        """Start the child in its own session, so a Ctrl-C at the terminal reaches sandrun only.

        `cleanup` runs once the child and everything it started are gone (or if it cannot start);
        `run_as` is a uid (and gid) to switch to, without supplementary groups, when sandrun is root.
        """
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,
                bufsize=0,
                pass_fds=tuple(pass_fds),
                **run_as_kwargs(run_as),
            )
        except OSError as exc:
            if cleanup:
                cleanup()
            raise BackendError(f"cannot start {argv[0]}: {exc.strerror}", hint="check --python") from None
        return cls(proc, token, cleanup)

    def send(self, data: bytes, timeout: float) -> bool:
        """Write all of `data` to the child's stdin within `timeout` seconds; False if it did not take it."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                written = os.write(self.stdin_fd, view)
            except BlockingIOError:
                written = 0
            except (BrokenPipeError, ValueError, OSError):
                raise BackendError("the interpreter stopped reading its input") from None
            view = view[written:]
            if not view:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wait([], [self.stdin_fd], min(left, SIGNAL_CHECK))
        return True

    def receive(self, timeout: float | None) -> bytes | None:
        """Read what the child wrote, waiting at most `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Short waits: a Ctrl-C landing just before select() blocks must not wait for the whole cell.
            left = SIGNAL_CHECK if deadline is None else min(SIGNAL_CHECK, deadline - time.monotonic())
            if self.stdout_fd in self._wait([self.stdout_fd], [], max(left, 0)):
                return os.read(self.stdout_fd, 1 << 16)
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _wait(self, read: list[int], write: list[int], timeout: float) -> list[int]:
        """select() on `read`/`write` and the stderr pipe, whose data is taken in passing; the ready fds."""
        watched = [*read, self.stderr_fd] if self.stderr_fd is not None else read
        ready, writable, _ = select.select(watched, write, [], timeout)
        if self.stderr_fd is not None and self.stderr_fd in ready:
            self._read_stderr(1 << 16)
        return [fd for fd in ready if fd != self.stderr_fd] + writable

    def _read_stderr(self, budget: int) -> None:
        """Take up to `budget` bytes the child wrote on stderr, keeping the last `TAIL` (never blocks)."""
        while self.stderr_fd is not None and budget > 0:
            try:
                chunk = os.read(self.stderr_fd, min(budget, 1 << 16))
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._close_stderr()
                return
            budget -= len(chunk)
            self.tail += chunk
            del self.tail[:-TAIL]

    def _close_stderr(self) -> None:
        self.stderr_fd = None
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    @property
    def returncode(self) -> int | None:
        """The child's exit status, once it has ended."""
        return self.proc.poll()

    def diagnostics(self) -> str:
        """The last few KiB the child wrote to its original stderr."""
        return self.stderr_tail()

    def stderr_tail(self) -> str:
        """The last `TAIL` bytes of the child's stderr (what has arrived so far), kept after `close`."""
        self._read_stderr(STDERR_BUDGET)
        return self.tail.decode("utf-8", "replace")

    def kill(self) -> None:
        """Kill the child's process group (the reader then sees the end of its output); any thread."""
        if self.closed or self.proc.poll() is not None:
            return  # reaped already: its pid may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        """Kill the child and everything it started (`end`), then release the run's resources."""
        if self.closed:
            return
        self.closed = True
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.end()
        self._read_stderr(STDERR_BUDGET)
        self._close_stderr()
        if self.cleanup:
            self.cleanup()

    def end(self) -> None:
        """Kill the child, its process group and any process carrying this run's marker."""
        kill_tree(self.proc, self.token)


class ReapedChannel(ProcessChannel):
    """The driver under the reaper (`sandrun.backends.reaper`): ending the reaper ends everything the run
    started, daemons included, whatever their process group, session or environment."""

    @property
    def returncode(self) -> int | None:
        """The driver's status, as the reaper passes it on (a death by signal N as 128 + N)."""
        return status_of_launcher(self.proc.poll())

    def kill(self) -> None:
        """Ask the reaper to kill everything now (it exits once nothing is left); any thread."""
        if self.closed or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)

    def end(self) -> None:
        """Stop the reaper and wait for it; if it does not end in time, or something killed it (then
        processes it would have reaped may be left), fall back on the process group and the marker."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
        code = wait_at_most(self.proc, REAP_DEADLINE)
        if code is None or code < 0:
            kill_tree(self.proc, self.token)


def status_of_launcher(code: int | None) -> int | None:
    """A launcher's exit status as a plain child's would be: the launchers (the reaper, bubblewrap) report
    a child killed by signal N as 128 + N, which becomes -N."""
    if code is not None and 128 < code < 128 + signal.NSIG:
        return -(code - 128)
    return code


def wait_at_most(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    """`proc`'s exit status once it ends, or None after `seconds`. A pidfd wakes us when it ends (Linux
    5.3+); `Popen.wait`'s polling with growing sleeps is the fallback."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            return proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None
    try:
        ready, _, _ = select.select([pidfd], [], [], seconds)
    finally:
        os.close(pidfd)
    return proc.wait() if ready else None


def kill_tree(proc: subprocess.Popen[bytes], token: str) -> None:
    """SIGKILL the process group of `proc` and every process whose environment holds `token`, then reap."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while (strays := marked_processes(token)) and time.monotonic() < deadline:
        for pid in strays:  # a stray may still be forking: repeat until none is left
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)


def marked_processes(token: str) -> list[int]:
    """PIDs of live processes (not zombies) whose environment carries `MARKER=token` (Linux /proc only)."""
    needle = f"{MARKER}={token}".encode()
    found: list[int] = []
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return found
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            marked = needle in (entry / "environ").read_bytes().split(b"\0")
            if marked and b") Z" not in (entry / "stat").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found

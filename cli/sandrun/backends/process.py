"""The `process` backend: the driver as a plain child process. It ISOLATES NOTHING.

Meant for debugging and for platforms without namespaces. It still gives each run a fresh working directory,
a clean environment, and kills every process the run started (by process group, and by a marker variable
for processes that left the group).
"""

from __future__ import annotations

import contextlib
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
from typing import Any

from sandrun.backends.base import SandboxOptions
from sandrun.errors import BackendError

SIGNAL_CHECK = 0.25
"""Longest single wait, in seconds, so that Python sees a signal that arrived just before the wait began."""
TAIL = 4096
"""Bytes of a child's stderr kept for diagnostics (its last words); the rest is read and dropped."""
STDERR_BUDGET = 1 << 20
"""Most bytes of stderr read in one go when a diagnosis is asked for, so that a writer cannot keep us busy."""
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
    isolation = "none"
    installs_packages = False

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
            copy_files(options.files, workdir)
        except BaseException:
            if cleanup:
                cleanup()
            raise
        token = uuid.uuid4().hex
        env = minimal_env(argv[0], str(workdir), options.env) | {MARKER: token}
        return ProcessChannel.spawn(argv, env, workdir, token, cleanup=cleanup)


def run_as_kwargs(uid: int | None) -> dict[str, Any]:
    """`subprocess.Popen` arguments that start the child as `uid` with no supplementary groups."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def copy_files(files: Mapping[str, Path], workdir: Path) -> None:
    """Copy each host file to its name inside `workdir`; BackendError says which one could not be."""
    for name, source in files.items():
        target = workdir / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(open_input_file(source), "rb") as reader, open(target, "wb") as writer:
                shutil.copyfileobj(reader, writer)
        except OSError as exc:
            raise BackendError(f"cannot copy {source} into the work directory: {exc.strerror}") from None


def open_input_file(path: Path) -> int:
    """Open a recipe's input file for reading: a regular file, not through a final symbolic link.

    When sandrun is root, only files any user could read: root must not carry a private file into a sandbox
    because a recipe asked for it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise BackendError(f"cannot open {path} for the sandbox: {exc.strerror}") from None
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
        os.set_blocking(self.stderr_fd, False)

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        env: dict[str, str],
        cwd: Path,
        token: str,
        pass_fds: Sequence[int] = (),
        cleanup: Callable[[], None] | None = None,
        run_as: int | None = None,
    ) -> ProcessChannel:
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
        """Kill the child, its process group and any process carrying this run's marker."""
        if self.closed:
            return
        self.closed = True
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        kill_tree(self.proc, self.token)
        self._read_stderr(STDERR_BUDGET)
        self._close_stderr()
        if self.cleanup:
            self.cleanup()


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
    found = []
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

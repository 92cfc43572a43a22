"""`sandrun.Session`: a code interpreter in a sandbox, for programs (and agents) that send code as they go.

    with sandrun.Session(backend="local", network=False, memory="2G") as s:
        r = s.run("x = 1 + 1\\nx")
        r.value  # '2'

One interpreter per session: state carries from one `run` to the next. A `run` that passes its `timeout` is
interrupted inside the sandbox and the session goes on; only a cell that ignores the interruption for the
grace period gets its sandbox killed (then `alive` is False and the next `run` raises `BackendError`).
A failing cell is a `Result` with `status == "error"`, never an exception on the host. Not for several
threads at once: calls are serialised. `sandrun.AsyncSession` is the asyncio variant.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from sandrun.api import Size, default_cache, limits, size
from sandrun.backends import get_backend
from sandrun.backends.base import SandboxOptions
from sandrun.defaults import DEFAULT_CELL_TIMEOUT
from sandrun.errors import BackendError
from sandrun.model import CellError, OutputChunk, Recipe, stream_text
from sandrun.runner import prepare_packages
from sandrun.session import DEFAULT_GRACE, CellOutcome, CellRequest
from sandrun.session import Session as SandboxSession
from sandrun.session_files import (
    ANSWER_LIMIT,
    CHUNK,
    FILENAME,
    START,
    decode_answer,
    file_error,
    get_request,
    name_parts,
    put_request,
    transfer_cell,
)

Status = Literal["ok", "error", "timeout", "crashed"]
STATUSES: dict[str, Status] = {"ok": "ok", "error": "error", "timeout": "timeout", "crashed": "crashed"}
TextCallback = Callable[[str], None]


@dataclass(frozen=True)
class Result:
    """What one `Session.run` did."""

    status: Status
    """`ok`; `error` (the code raised: see `error`); `timeout` (interrupted at its timeout, or its sandbox
    killed when it ignored that); `crashed` (the sandbox died or broke the protocol)."""
    outputs: tuple[OutputChunk, ...] = ()
    """stdout and stderr in the order they were written, one chunk per change of stream."""
    value: str | None = None
    """`repr` of the code's trailing expression, as a REPL shows it; None if there is none (or it is None)."""
    error: CellError | None = None
    """The exception: `type`, `message`, `traceback` (without sandrun's frames), `line`."""
    duration: float = 0.0
    """Seconds, on the host, from sending the code to the result."""
    peak_memory: int | None = None
    """Peak resident memory of the interpreter so far, in bytes, where the sandbox reports it."""

    @property
    def stdout(self) -> str:
        """All stdout text."""
        return stream_text(self.outputs, "stdout")

    @property
    def stderr(self) -> str:
        """All stderr text."""
        return stream_text(self.outputs, "stderr")

    @property
    def ok(self) -> bool:
        """Whether the code ran to its end without raising."""
        return self.status == "ok"


class Session:
    """An interpreter in a sandbox; start it with `with` (or `start()`, then `close()`)."""

    def __init__(
        self,
        backend: str = "local",
        *,
        packages: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        network: bool = False,
        memory: Size = "4G",
        cpu_time: int = 900,
        max_procs: int = 256,
        disk: Size = "1G",
        cpu: float | None = None,
        python: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_CELL_TIMEOUT,
        grace: float = DEFAULT_GRACE,
        output_limit: Size = "1M",
        cache_dir: str | os.PathLike[str] | None = None,
        on_stdout: TextCallback | None = None,
        on_stderr: TextCallback | None = None,
    ) -> None:
        """Options mean what the `sandrun run` options of the same names mean (sizes as bytes or `2G`);
        `packages` are pip requirements installed into a cached environment first (on `local`, built in a
        sandbox of its own); `timeout` is the default of `run`; `on_stdout`/`on_stderr` receive output
        as it is written, unless a `run` passes its own. Nothing starts until `start` (or `with`)."""
        self.backend = get_backend(backend, os.environ)
        self.timeout = timeout
        self.grace = grace
        self.on_stdout, self.on_stderr = on_stdout, on_stderr
        self._output_limit = max(1, size(output_limit, "output_limit"))
        self._packages = tuple(packages)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._sandbox = SandboxOptions(
            env=dict(env or {}),
            python=python,
            workdir=Path(workdir) if workdir is not None else None,
            network=network,
            limits=limits(memory, cpu_time, max_procs, disk, cpu),
        )
        self._session: SandboxSession | None = None
        self._lock = threading.Lock()
        self._count = 0
        self._killed = False

    def start(self) -> Session:
        """Start the sandbox (building `packages` first if needed); `BackendError` says why it could not."""
        with self._lock:
            if self._session is not None:
                return self
            sandbox = self._sandbox
            if self._packages:
                recipe = Recipe(str(Path.cwd() / "<session>"), "", "session", (), packages=self._packages)
                sandbox = prepare_packages(recipe, self.backend, sandbox, self._cache_dir or default_cache())
            session = SandboxSession.start(self.backend, sandbox, self._output_limit)
            try:
                started = session.run(CellRequest(START, FILENAME, 1, self.timeout), self.grace)
                if started.status != "ok":
                    raise BackendError(f"the session could not set up its work directory: {started.error}")
            except BaseException:
                session.close()
                raise
            self._session = session
        return self

    @property
    def alive(self) -> bool:
        """Whether the interpreter is running and takes code."""
        return self._session is not None and not self._session.dead_reason and not self._killed

    @property
    def python_version(self) -> str | None:
        """The version of the interpreter inside, once started."""
        return self._session.python_version if self._session else None

    def run(
        self,
        code: str,
        *,
        timeout: float | None = None,
        on_stdout: TextCallback | None = None,
        on_stderr: TextCallback | None = None,
    ) -> Result:
        """Run `code` in the session's interpreter and return what it did.

        `timeout` (seconds; default: the session's) interrupts the code and keeps the session. Callbacks
        get each piece of output as it arrives; an exception in one is raised here once the code has
        finished (the output goes on being collected). Ctrl-C while waiting kills the sandbox."""
        callbacks = {"stdout": on_stdout or self.on_stdout, "stderr": on_stderr or self.on_stderr}
        failures: list[BaseException] = []

        def on_output(chunk: OutputChunk) -> None:
            callback = callbacks.get(chunk.stream)
            if callback is not None and not failures:
                try:
                    callback(chunk.text)
                except Exception as exc:
                    failures.append(exc)

        with self._lock:
            self._count += 1
            outcome = self._send(code, f"<cell-{self._count}>", timeout, on_output)
        if failures:
            raise failures[0]
        return Result(
            status=STATUSES.get(outcome.status, "crashed"),
            outputs=tuple(outcome.outputs),
            value=outcome.value,
            error=outcome.error,
            duration=outcome.duration,
            peak_memory=outcome.peak_memory,
        )

    def upload(self, name: str | os.PathLike[str], data: bytes) -> None:
        """Write `data` to the file `name` (relative, e.g. `data/in.csv`; directories are made) in the work
        directory, through the sandbox. `ValueError` for a name that could leave the work directory; an
        `OSError` if the sandbox refuses (a symbolic link anywhere in the name, a directory in the way)."""
        parts = name_parts(name)
        view = memoryview(bytes(data))
        first = True
        while first or view:
            self._transfer(put_request(parts, bytes(view[:CHUNK]), first), "upload", str(name))
            view, first = view[CHUNK:], False

    def download(self, name: str | os.PathLike[str]) -> bytes:
        """The bytes of the regular file `name` in the work directory, read through the sandbox; errors as
        for `upload` (`FileNotFoundError` when there is no such file)."""
        parts = name_parts(name)
        pieces: list[bytes] = []
        while True:
            piece = decode_answer(
                self._transfer(get_request(parts, sum(map(len, pieces))), "download", str(name))
            )
            pieces.append(piece)
            if len(piece) < CHUNK:
                return b"".join(pieces)

    def interrupt(self) -> None:
        """Kill the sandbox now, from any thread (a running `run` returns `crashed`); the session is over."""
        session = self._session
        if session is not None:
            self._killed = True
            session.interrupt()

    def close(self) -> None:
        """Stop the sandbox and everything in it. Safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(
        self, code: str, filename: str, timeout: float | None, on_output: Callable[[OutputChunk], None] | None
    ) -> CellOutcome:
        session = self._session
        if session is None:
            raise BackendError("the session is not started (use `with Session(...)` or `start()`)")
        if self._killed:
            raise BackendError("the session was interrupted: its sandbox is gone")
        try:
            return session.run(CellRequest(code, filename, 1, timeout or self.timeout), self.grace, on_output)
        except BaseException as exc:
            if not isinstance(exc, BackendError):
                self._killed = True  # Ctrl-C mid-cell: the interpreter's state is unknown, so it goes
                session.close()
            raise

    def _transfer(self, request: dict[str, object], verb: str, name: str) -> str | None:
        with self._lock:
            session = self._session
            if session is not None:
                session.output_limit = max(self._output_limit, ANSWER_LIMIT)  # room for one chunk
            try:
                outcome = self._send(transfer_cell(request), FILENAME, None, None)
            finally:
                if session is not None:
                    session.output_limit = self._output_limit
        if outcome.status != "ok":
            error = outcome.error or CellError(outcome.status, "")
            raise file_error(verb, name, error.type, error.message)
        return outcome.value

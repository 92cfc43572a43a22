"""The host side of the driver protocol: one interpreter in a sandbox, fed one cell at a time.

`Session.start` launches `python -I -u -c BOOT` through a backend, sends the driver through stdin (no file
upload, no argument-length limits; see `sandrun.bootstrap`), and waits for its `ready` event. `Session.run`
sends a cell and collects its events until `done`, enforcing the host-side deadline and output cap. Every
backend gets this same logic; the backend only moves bytes.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandrun.backends.base import Backend, Channel, SandboxOptions
from sandrun.bootstrap import boot_argv, driver_payload
from sandrun.errors import BackendError
from sandrun.events import (
    Event,
    ProtocolViolation,
    display_fields,
    done_fields,
    parse_event,
    stream_fields,
    text_field,
)
from sandrun.model import DISPLAY, OUTPUT_CUT, CellError, Condition, OutputChunk, StatementOutput

__all__ = [
    "CellOutcome",
    "CellRequest",
    "OutputCollector",
    "OutputRuns",
    "ProtocolViolation",
    "Session",
    "Submitted",
    "parse_event",
]

DEFAULT_OUTPUT_LIMIT = 1 << 20
DISPLAY_LIMIT = 10 << 20
"""Bytes of rich output (MIME data other than text/plain, as sent) kept per cell."""
DEFAULT_GRACE = 3.0
START_TIMEOUT = 60.0
SEND_TIMEOUT = 60.0
"""Seconds a cell without a timeout gives the interpreter to take its code;
a healthy interpreter takes it at once."""
SIGNAL_MEANINGS = {
    "SIGSEGV": " (a segmentation fault)",
    "SIGXCPU": " (it used up its CPU-time limit; see --cpu-time)",
    "SIGXFSZ": " (it wrote a file larger than allowed)",
}


AHEAD_BYTES = 2048
"""Most bytes of requests sent ahead and not collected yet: little enough that, with the request being read,
they fit in a pipe of the smallest size (one page), so sending ahead never waits for the interpreter."""


@dataclass(frozen=True)
class CellRequest:
    """One cell as the interpreter is asked to run it (`Session.run`, `submit`, `submit_ahead`)."""

    code: str
    filename: str
    """The file the code is said to come from, in tracebacks and warnings."""
    line: int
    """Its first line in that file."""
    timeout: float | None
    """Seconds it may run; None: no limit."""
    by_statement: bool = False
    """Record what each top-level statement prints (`CellOutcome.printed`), for `#>` comments."""
    interactive: bool = False
    """Run it as a console runs a `>>>` example, showing the value of every expression statement (in loops
    and blocks too)."""
    skip_if: Condition | None = None
    """An expression the driver evaluates first (in the cell's interpreter, inside the sandbox): when it is
    true, the cell is not run and its outcome is `skipped`."""


@dataclass
class Submitted:
    """A cell sent to the interpreter (`Session.submit`), whose outcome `Session.collect` waits for."""

    id: int
    timeout: float | None
    grace: float
    ahead: int = 0
    """Bytes of its request counted in `AHEAD_BYTES` until it is collected."""
    unsent: str | None = None
    """Why its request could not be written in time (the sandbox is given up when it is collected)."""
    failure: BackendError | None = None
    """The sandbox was gone when its request was written."""


@dataclass
class CellOutcome:
    """What the driver (or its death) said about one cell, before any expectation is applied."""

    status: str
    """`ok`, `error` (the cell raised), `timeout`, `skipped` (its `skip_if` was true, or it was sent ahead
    after a cell that did not end `ok` or `skipped`, so not run), or `crashed` (the sandbox is gone or
    misbehaved)."""
    outputs: list[OutputChunk] = field(default_factory=list)
    value: str | None = None
    error: CellError | None = None
    error_types: tuple[str, ...] = ()
    """The raised exception's class and its bases, most specific first, for matching expectations."""
    duration: float = 0.0
    peak_memory: int | None = None
    printed: list[StatementOutput] | None = None
    """stdout by top-level statement, when the cell's request asked for it (`CellRequest.by_statement`)."""


class Session:
    """A live interpreter in a sandbox. Not thread-safe: one cell at a time, from one thread."""

    def __init__(self, channel: Channel, output_limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.channel = channel
        self.output_limit = output_limit
        self.max_line = max(16 << 20, 8 * output_limit)
        self.python_version: str | None = None
        self.dead_reason: str | None = None
        """Set once the sandbox is unusable: why, in words."""
        self._buffer = bytearray()
        self._next_id = 0
        self._pending: tuple[str, ...] = ()
        """Answers the driver still owes for its start, after `ready`."""
        self._ahead_bytes = 0
        """Bytes of requests sent ahead (`submit_ahead`) and not collected yet."""
        self._stuck: str | None = None
        """Why nothing more can be sent: a request was cut short."""

    @classmethod
    def start(
        cls,
        backend: Backend,
        options: SandboxOptions,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        start_timeout: float = START_TIMEOUT,
        on_started: Callable[[Session], None] | None = None,
    ) -> Session:
        """Start a sandbox and its driver; raises `BackendError` saying why if it does not come up.

        `on_started` gets the session as soon as its sandbox exists, before the driver answers, so that
        another thread can stop a slow start (`interrupt`)."""
        session = cls.launch(backend, options, output_limit, start_timeout, on_started)
        session.wait_ready(start_timeout)
        return session

    @classmethod
    def launch(
        cls,
        backend: Backend,
        options: SandboxOptions,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        start_timeout: float = START_TIMEOUT,
        on_started: Callable[[Session], None] | None = None,
    ) -> Session:
        """Start a sandbox and hand its driver the program, without waiting for the answer: the sandbox
        boots while the caller does other work. `wait_ready` must be called before the first cell."""
        channel = backend.start(boot_argv(options.python or backend.default_python()), options)
        session = cls(channel, output_limit)
        if on_started is not None:
            on_started(session)
        limits = backend.driver_limits(options)
        session._pending = ("limits",) if limits else ()
        try:
            setup = json.dumps({"op": "limits", "limits": limits}).encode() + b"\n" if limits else b""
            if not channel.send(driver_payload() + setup, start_timeout):
                raise BackendError("the interpreter did not read its start-up input within the start timeout")
        except BackendError as exc:
            session.close()
            raise BackendError(f"{exc}{session._diagnostics()}") from None
        except BaseException:  # Ctrl-C during the start: the sandbox must not outlive it
            session.close()
            raise
        return session

    def wait_ready(self, start_timeout: float = START_TIMEOUT) -> None:
        """Wait (at most `start_timeout` seconds from now) until the driver of a `launch`ed session says it
        is ready; raises `BackendError` saying why if it does not. Does nothing once it has."""
        if self.python_version is not None:
            return
        deadline = time.monotonic() + start_timeout
        try:
            version = text_field(self._expect("ready", deadline), "python", "ready")
            if self._pending:
                errors = self._expect("limits", deadline).get("errors")
                if errors:
                    raise BackendError(f"could not set the resource limits {errors}")
            self.python_version = version
        except (BackendError, ProtocolViolation) as exc:
            self.close()
            raise BackendError(f"{exc}{self._diagnostics()}") from None
        except BaseException:  # Ctrl-C during the start: the sandbox must not outlive it
            self.close()
            raise

    def _expect(self, kind: str, deadline: float) -> Event:
        """The next event, which must be of `kind`; anything else means the start failed."""
        event = self._next_event(deadline)
        if event is None:
            raise BackendError(f"the interpreter did not say {kind!r} within the start timeout")
        if event.get("ev") != kind:
            raise ProtocolViolation(f"expected {kind!r} from the driver, got {event.get('ev')!r}")
        return event

    def run(
        self,
        cell: CellRequest,
        grace: float = DEFAULT_GRACE,
        on_output: Callable[[OutputChunk], None] | None = None,
    ) -> CellOutcome:
        """Run one cell; output chunks are passed to `on_output` as they arrive."""
        return self.collect(self.submit(cell, grace), on_output)

    def submit(self, cell: CellRequest, grace: float = DEFAULT_GRACE) -> Submitted:
        """Send a cell's code to the interpreter, which runs it once the cells sent before it are done;
        `collect` gets its outcome. Raises `BackendError` if the sandbox is known to be dead already."""
        return self._send(self._request(cell, None), cell.timeout, grace)

    def submit_ahead(self, cell: CellRequest, grace: float, after: int | None) -> Submitted | None:
        """Send a cell while earlier ones still run, so that the interpreter never waits for the host.

        With `after` (the id of the cell sent just before), the interpreter runs it only if that cell ran
        and ended `ok` or was skipped by its `skip_if`, and else answers `skipped`. None, and nothing sent,
        if the sandbox is dead or the cells sent ahead would hold more than `AHEAD_BYTES` (then a write
        could wait for the interpreter).
        """
        if self.dead_reason:
            return None
        request = self._request(cell, after)
        if self._ahead_bytes + len(request) > AHEAD_BYTES:
            self._next_id -= 1  # the id is not used: the next cell gets it
            return None
        submitted = self._send(request, cell.timeout, grace)
        submitted.ahead = len(request)
        self._ahead_bytes += submitted.ahead
        return submitted

    def _request(self, cell: CellRequest, after: int | None) -> bytes:
        if self.dead_reason:
            raise BackendError(self.dead_reason)
        self._next_id += 1
        request = {"op": "run", "id": self._next_id, "code": cell.code, "filename": cell.filename}
        request.update(line=cell.line, timeout=cell.timeout, output_limit=self.output_limit)
        if after is not None:
            request["after"] = after
        if cell.by_statement:
            request["arrows"] = True
        if cell.interactive:
            request["interactive"] = True
        if cell.skip_if is not None:
            request["skip_if"] = {"text": cell.skip_if.text, "line": cell.skip_if.line}
        return json.dumps(request).encode() + b"\n"

    def _send(self, request: bytes, timeout: float | None, grace: float) -> Submitted:
        submitted = Submitted(self._next_id, timeout, grace)
        if self._stuck:  # a request was cut short: what follows it would be read as part of it
            submitted.unsent = self._stuck
            return submitted
        allowed = timeout + grace if timeout else SEND_TIMEOUT
        try:
            if not self.channel.send(request, allowed):
                submitted.unsent = f"the interpreter did not take the cell's code within {allowed:g} s"
                self._stuck = submitted.unsent
        except BackendError as exc:
            submitted.failure = exc
        return submitted

    def collect(
        self, submitted: Submitted, on_output: Callable[[OutputChunk], None] | None = None
    ) -> CellOutcome:
        """Wait for a submitted cell's events until its `done`, passing output chunks to `on_output` as
        they arrive. Cells are collected in the order they were submitted; the cell's deadline (its
        timeout and the grace period) starts now, when the cells before it are done."""
        self._ahead_bytes -= submitted.ahead
        submitted.ahead = 0
        cell_id, timeout, grace = submitted.id, submitted.timeout, submitted.grace
        outcome = CellOutcome(status="ok")
        collector = OutputCollector(self.output_limit, outcome.outputs, on_output)
        started = time.monotonic()
        deadline = started + timeout + grace if timeout else None
        finished = False
        try:
            if submitted.failure is not None:
                raise submitted.failure
            if self.dead_reason:
                raise BackendError(self.dead_reason)
            if submitted.unsent:
                self._give_up(outcome, submitted.unsent)
            while outcome.status != "timeout":
                event = self._next_event(deadline)
                if event is None:
                    self._give_up(outcome, f"the cell ignored its {timeout:g} s timeout for {grace:g} s more")
                    break
                if event.get("id") != cell_id:
                    continue  # late events of an earlier cell
                kind = event.get("ev")
                if kind == "stream":
                    collector.add(*stream_fields(event))
                elif kind == "display":
                    collector.add_display(display_fields(event))
                elif kind == "done":
                    self._apply_done(event, outcome, collector)
                    finished = True
                    break
        except (BackendError, ProtocolViolation) as exc:
            self._kill(f"{exc}{self._diagnostics()}")  # what the sandbox said explains a crash
        if not finished and outcome.status != "timeout":
            outcome.status = "crashed"
            outcome.error = CellError("SandboxDied", self.dead_reason or "the sandbox stopped")
        collector.finish()
        outcome.duration = time.monotonic() - started
        return outcome

    def close(self) -> None:
        """Stop the sandbox and everything in it."""
        self.channel.close()

    def interrupt(self) -> None:
        """Kill the sandbox from another thread; the thread running a cell sees it die and returns."""
        self.channel.kill()

    def describe_death(self) -> str:
        """Why the interpreter is gone, from its exit status."""
        code = self.channel.returncode
        if code is None:
            return "closed its channel"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}" + SIGNAL_MEANINGS.get(name, "")
        return f"exited with status {code}"

    def _apply_done(self, event: Event, outcome: CellOutcome, collector: OutputCollector) -> None:
        done = done_fields(event)
        outcome.status, outcome.value, outcome.peak_memory = done.status, done.value, done.peak_memory
        outcome.error, outcome.error_types = done.error, done.error_types
        outcome.printed = done.printed
        for stream, dropped in done.truncated.items():
            collector.dropped[stream] = collector.dropped.get(stream, 0) + dropped

    def _give_up(self, outcome: CellOutcome, reason: str) -> None:
        """The sandbox missed a deadline: kill it; the cell is a timeout."""
        self._kill(reason)
        outcome.status = "timeout"
        outcome.error = CellError("TimeoutError", f"{self.dead_reason}; the sandbox was killed")

    def _kill(self, reason: str) -> None:
        if not self.dead_reason:
            self.dead_reason = reason
        self.channel.close()

    def _diagnostics(self) -> str:
        text = self.channel.diagnostics().strip()
        return f"\n  the sandbox said: {text}" if text else ""

    def _next_event(self, deadline: float | None) -> Event | None:
        """The next protocol event, or None at the deadline. EOF and garbage raise."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return parse_event(line)
            if len(self._buffer) > self.max_line:
                raise ProtocolViolation(f"the sandbox sent a line longer than {self.max_line} bytes")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            chunk = self.channel.receive(remaining)
            if chunk is None:
                return None
            if not chunk:
                self.channel.close()
                raise BackendError(f"the interpreter in the sandbox {self.describe_death()}")
            self._buffer += chunk


class OutputRuns:
    """Output chunks merged as they arrive, one run of text per change of stream (a `print` arrives as two
    writes, a loop of one-byte writes as one event each): memory stays near the size of the text itself."""

    BATCH = 1024
    """Pieces joined at a time: few, so per-piece overhead stays small; so bytes are rarely copied."""

    def __init__(self) -> None:
        self._runs: list[tuple[str, list[str], list[str]] | OutputChunk] = []

    def add(self, chunk: OutputChunk) -> None:
        """Append a chunk to the run of its stream, or start a new run (rich output stands alone)."""
        if chunk.rich:
            self._runs.append(chunk)
            return
        if not chunk.text:
            return
        last = self._runs[-1] if self._runs else None
        if not isinstance(last, tuple) or last[0] != chunk.stream:
            last = (chunk.stream, [], [])
            self._runs.append(last)
        _, joined, pieces = last
        pieces.append(chunk.text)
        if len(pieces) >= self.BATCH:
            joined.append("".join(pieces))
            pieces.clear()

    def chunks(self) -> list[OutputChunk]:
        """The output so far: one chunk per run, and each rich output."""
        return [
            run if isinstance(run, OutputChunk) else OutputChunk(run[0], "".join(run[1]) + "".join(run[2]))
            for run in self._runs
        ]


class OutputCollector:
    """Keeps a cell's output in order, at most `limit` bytes per stream, and marks what it dropped."""

    def __init__(
        self, limit: int, outputs: list[OutputChunk], on_output: Callable[[OutputChunk], None] | None
    ) -> None:
        self.limit = limit
        self.outputs = outputs
        """Filled by `finish`: one chunk per change of stream."""
        self.on_output = on_output
        self.runs = OutputRuns()
        self.kept: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.display_kept = 0
        self.display_dropped = 0
        """Bytes of rich output dropped past `DISPLAY_LIMIT` (here or, as the driver says, inside)."""

    def add_display(self, chunk: OutputChunk) -> None:
        """Record rich output; past the cell's `DISPLAY_LIMIT`, only its text/plain is kept."""
        data = chunk.data or {}
        size = sum(len(v.encode("utf-8", "replace")) for k, v in data.items() if k != "text/plain")
        if self.display_kept + size > DISPLAY_LIMIT:
            self.display_dropped += size
            chunk = OutputChunk(chunk.stream, chunk.text, {"text/plain": chunk.text}, {})
        else:
            self.display_kept += size
        self._append(chunk)

    def add(self, stream: str, text: str) -> None:
        """Record a chunk of `stream` (a checked stream name), cutting it at the limit."""
        size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        room = self.limit - self.kept.get(stream, 0)
        if size > room:
            self.dropped[stream] = self.dropped.get(stream, 0) + size - max(room, 0)
            text = text.encode("utf-8", "replace")[: max(room, 0)].decode("utf-8", "ignore")
            size = max(room, 0)
        if not text:
            return
        self.kept[stream] = self.kept.get(stream, 0) + size
        self._append(OutputChunk(stream, text))

    def finish(self) -> None:
        """Append one marker per stream that lost output, and fill `outputs` with the merged runs."""
        for stream, count in self.dropped.items():
            if count:
                note = OUTPUT_CUT.format(dropped=count, stream=stream, limit=self.limit)
                self._append(OutputChunk(stream, f"\n{note}\n"))
        if self.display_dropped:
            note = (
                f"[sandrun: {self.display_dropped} bytes of rich output not shown; "
                f"the limit is {DISPLAY_LIMIT} bytes per cell]"
            )
            self._append(OutputChunk(DISPLAY, note, {"text/plain": note}, {}))
        self.outputs[:] = self.runs.chunks()

    def _append(self, chunk: OutputChunk) -> None:
        self.runs.add(chunk)
        if self.on_output is not None:
            self.on_output(chunk)

"""The program that runs INSIDE the sandbox: one persistent interpreter that executes cells on request.

Stdlib only, Python 3.9+, and it imports nothing from sandrun: the host sends this file's source through the
bootstrap (see `sandrun.session`) and it runs as a stand-alone script.

Protocol: JSON lines. Requests on the private copy of stdin: `{"op": "run", "id", "code", "filename",
"line", "timeout", "output_limit"}`, and optionally: `"after": id` (the host sent this cell before the
cell `id` had ended, and it runs only if that cell ran and ended `ok` or was skipped by its condition;
else its `done` says `skipped`); `skip_if` (`{"text", "line"}`: a Python expression from the recipe;
when it is true, the cell is not run and its `done` says `skipped`); `"arrows": true` (the `done` says
what each top-level statement printed); `"interactive": true` (compiled as a console compiles).
Events on the private copy of stdout: `ready` once, then for each cell any number of `stream` and
`display` events (rich output: a MIME bundle, see `RichDisplay`) and one `done`. File descriptors 0, 1
and 2 are taken over at start: 0 reads nothing (so `input()` fails at once), 1 and 2 are pipes this
driver reads, so that anything written to them, by `print`, `os.write`, C code or child processes,
becomes a `stream` event and never touches the protocol.
"""

from __future__ import annotations

import _ast as ast
import _thread
import _warnings
import builtins
import codecs
import io
import os
import select
import sys
import time
import types

TYPE_CHECKING = False
# Imported at start: only what the standard library has already loaded and C modules. The pure-Python
# `ast`, `json`, `signal`, `threading`, `traceback` and `linecache` (with `re`, `enum`, `tokenize`...) cost
# more than the rest of the driver's start: their C cores serve the cells, the rest is imported on an error.
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal
if TYPE_CHECKING:  # the protocol's shapes, for the type checker only: nothing more is imported in the sandbox
    from collections.abc import Callable
    from typing import Any, TypedDict

    class RunRequest(TypedDict):
        """A `run` request from the host."""

        op: str
        id: int
        code: str
        filename: str
        line: int
        timeout: float | None
        output_limit: int
        display_limit: int
        interactive: bool
        skip_if: dict[str, object] | None

    class ErrorInfo(TypedDict):
        """How a cell's exception is described in its `done` event."""

        type: str
        types: list[str]
        message: str
        traceback: str
        line: int | None

    class DoneFields(TypedDict, total=False):
        """A `done` event without its `ev` and `id`."""

        status: str
        value: str
        error: ErrorInfo
        duration: float
        truncated: dict[str, int]
        display_dropped: int
        peak_memory: int | None
        printed: list[list[object]]


STREAMS = ("stdout", "stderr")
HOLD_BYTES = 8192
HOLD_SECONDS = 0.02
"""Python-level writes to one stream are held back and sent as one event, up to this many characters or this
long: a loop of one-byte writes must not cost an event (and host memory, and time) per byte."""
DRIVER_FILENAME = "<sandrun-driver>"
GET_SIGNAL = getattr(signal, "_signal", signal).getsignal
"""`signal.getsignal` without its conversion to an enum, which costs more than the rest of a small cell's
timer handling (CPython's `signal` module wraps the `_signal` one)."""
MAIN_THREAD = _thread.get_ident()
REAPER: int | None = None
"""The pid of the reaper this driver left as pid 1 of its PID namespace, if any (`stay_pid_1_as_reaper`)."""


def json_codec() -> tuple[Callable[[object], str], Callable[[str], Any]]:
    """`json.dumps(obj, ensure_ascii=False)` and `json.loads(text)` by the `_json` C module alone, checked on
    a sample; the `json` package where that does not work (another implementation, a changed signature)."""
    try:
        import _json

        def fail(obj: object) -> object:
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

        def dumps(obj: object) -> str:
            encode = _json.make_encoder(
                {}, fail, _json.encode_basestring, None, ": ", ", ", False, False, True
            )
            return "".join(encode(obj, 0))

        class Context:
            strict = True
            object_hook = object_pairs_hook = None
            parse_float, parse_int = float, int
            parse_constant = {
                "-Infinity": float("-inf"),
                "Infinity": float("inf"),
                "NaN": float("nan"),
            }.__getitem__

        scan = _json.make_scanner(Context())  # type: ignore[arg-type]  # any object with these attributes

        def loads(text: str) -> Any:
            value, end = scan(text, 0)
            if text[end:].strip():
                raise ValueError(f"extra data after the JSON value at {end}")
            return value

        sample = {"a": [1, 2.5, '\u00e9\n"', None, True, {}]}
        expected = '{"a": [1, 2.5, "\u00e9\\n\\"", null, true, {}]}'
        if dumps(sample) == expected and loads(expected + "\n") == sample:
            return dumps, loads
    except Exception:  # any failure means: use the json package
        pass
    import json

    return lambda obj: json.dumps(obj, ensure_ascii=False), json.loads


to_json, from_json = json_codec()


class CellTimeout(BaseException):
    """Raised inside a cell when its time is up; a BaseException so that `except Exception` cannot eat it."""


class Emitter:
    """Writes protocol events, one JSON line each, to the private channel; safe to call from any thread.

    A cell's timeout (SIGALRM, handled in the main thread) must never cut a line in half: while the main
    thread writes, `busy` is set and the timeout waits (`deferred`) until the line is out. At a cell's end
    its last events are gathered (`gather`) and go out with its `done` in one write (`finish`).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = _thread.RLock()
        self.busy = False
        self.deferred: BaseException | None = None
        self.gathered: list[bytes] | None = None

    def send(self, event: dict[str, object]) -> None:
        """Write one event as a JSON line (the whole line, even if a timeout fires meanwhile)."""
        data = (to_json(event) + "\n").encode("utf-8", "replace")
        with self.lock:
            if self.gathered is not None:
                self.gathered.append(data)
                return
            self._write(data)

    def gather(self) -> None:
        """Keep events from now on, to be written together with the next `finish`."""
        with self.lock:
            self.gathered = []

    def finish(self, event: dict[str, object]) -> None:
        """Write the gathered events and then `event`, at once."""
        data = (to_json(event) + "\n").encode("utf-8", "replace")
        with self.lock:
            if self.gathered:
                data = b"".join(self.gathered) + data
            self.gathered = None
            self._write(data)

    def _write(self, data: bytes) -> None:
        main = _thread.get_ident() == MAIN_THREAD
        self.busy = main
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            os._exit(0)  # the host is gone: nobody is left to report to
        finally:
            self.busy = False
        if main and self.deferred is not None:
            deferred, self.deferred = self.deferred, None
            raise deferred


class Capture:
    """Turns everything written to fds 1 and 2 and to sys.stdout/sys.stderr into ordered `stream` events.

    Python-level writes to one stream are held briefly and sent together (`HOLD_BYTES`, `HOLD_SECONDS`),
    and always before anything that comes after them: fd-level output (the pipes are checked at every
    write), a write to the other stream, a flush, the cell's end. So their relative order stays exact. A
    pump thread forwards fd-level output that arrives on its own (from children, C code, background
    threads) and sends held text once it is `HOLD_SECONDS` old. Output produced between cells is kept and
    given to the next cell.
    """

    def __init__(self, emitter: Emitter, fds: dict[str, int]) -> None:
        self.emitter = emitter
        self.fds = fds
        self.decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in fds}
        self.cell_id: int | None = None
        self.limit = 1 << 20
        self.sent = dict.fromkeys(STREAMS, 0)
        self.dropped = dict.fromkeys(STREAMS, 0)
        self.pending: list[tuple[str, str]] = []
        self.held: list[str] = []
        self.held_name = STREAMS[0]
        self.held_size = 0
        self.held_since = 0.0
        self.timing = False
        """Whether the pump sleeps with a deadline (and sees held text in time without being woken)."""
        self.tee: list[str] | None = None
        """Where stdout text sent for the cell is also kept, while `StatementPrints` records it."""
        self.readers = list(fds.values())
        self.wake_r, self.wake_w = os.pipe()  # tells the pump that text is held, so that it sends it in time
        for fd in (*self.readers, self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        os.register_at_fork(before=self.flush, after_in_child=self._forget_held)
        _thread.start_new_thread(self._pump, ())  # not `threading`: one import less at every start

    def begin(self, cell_id: int, limit: int) -> None:
        """Attribute output to `cell_id` from now on, with a fresh budget of `limit` bytes per stream."""
        with self.emitter.lock:
            self.cell_id, self.limit = cell_id, limit
            self.sent = dict.fromkeys(STREAMS, 0)
            self.dropped = dict.fromkeys(STREAMS, 0)
            pending, self.pending = self.pending, []
            for name, text in pending:
                self._emit(name, text)

    def end(self) -> dict[str, int]:
        """Forward what the pipes hold, stop attributing output to the cell; return dropped byte counts."""
        with self.emitter.lock:
            self._drain()
            self._release()
            self.cell_id = None
            return {name: n for name, n in self.dropped.items() if n}

    def write(self, name: str, text: str) -> None:
        """A Python-level write to `name`, placed after anything already written at the fd level."""
        with self.emitter.lock:
            self._drain()
            if self.held and self.held_name != name:
                self._release()
            if not self.held:
                self.held_name, self.held_since = name, time.monotonic()
                if not self.timing:  # the pump sleeps without a deadline: give it one
                    self.timing = True
                    try:  # noqa: SIM105 - contextlib is one import more at every start
                        os.write(self.wake_w, b"!")
                    except OSError:  # full: the pump has wake-ups enough
                        pass
            self.held.append(text)
            self.held_size += len(text)
            if self.held_size >= HOLD_BYTES:
                self._release()

    def flush(self) -> None:
        """Send what is held now (`sys.stdout.flush()`, `print(..., flush=True)`, before a fork)."""
        with self.emitter.lock:
            self._drain()
            self._release()

    def _release(self) -> None:
        if self.held:
            text, self.held, self.held_size = "".join(self.held), [], 0
            self._emit(self.held_name, text)

    def _forget_held(self) -> None:
        self.held, self.held_size = [], 0  # the parent sends it; a forked child must not send it again

    def _emit(self, name: str, text: str) -> None:
        if not text:
            return
        if self.cell_id is None:
            if sum(len(t) for _, t in self.pending) < self.limit:
                self.pending.append((name, text))
            return
        size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        room = self.limit - self.sent[name]
        if size > room:
            self.dropped[name] += size - max(room, 0)
            if room <= 0:
                return
            text = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
            size = room
        self.sent[name] += size
        if self.tee is not None and name == "stdout":
            self.tee.append(text)
        self.emitter.send({"ev": "stream", "id": self.cell_id, "name": name, "text": text})

    def _drain(self) -> None:
        ready, _, _ = select.select(self.readers, [], [], 0)
        for name, fd in self.fds.items():
            if fd not in ready:
                continue
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                if not chunk:
                    break
                self._release()  # held text was written before this reached the pipe
                self._emit(name, self.decoders[name].decode(chunk))

    def _pump(self) -> None:
        fds = [*self.fds.values(), self.wake_r]
        with self.emitter.lock:
            wait = self._pump_wait()
        while True:
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except InterruptedError:
                continue
            if self.wake_r in ready:
                try:  # noqa: SIM105
                    os.read(self.wake_r, 4096)
                except (BlockingIOError, InterruptedError):
                    pass
            with self.emitter.lock:
                self._drain()
                if self.held and time.monotonic() - self.held_since >= HOLD_SECONDS:
                    self._release()
                wait = self._pump_wait()

    def _pump_wait(self) -> float | None:
        """How long the pump may sleep: until held text is due, else until something arrives. A write
        wakes it only in the second case (`timing` is false), so a burst of short cells costs few wake-ups."""
        if self.held:
            return max(0.0, self.held_since + HOLD_SECONDS - time.monotonic())
        self.timing = False
        return None


class TextStream(io.TextIOBase):
    """sys.stdout / sys.stderr inside the sandbox: every write goes straight to the capture, in order."""

    def __init__(self, name: str, fd: int, capture: Capture) -> None:
        self.name_ = name
        self.fd = fd
        self.capture = capture
        self.buffer = ByteStream(self)

    @property  # typeshed declares a plain attribute; CPython's io base class has a read-only one
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]  # read-only in CPython too, as for `encoding`
        return "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fd

    def write(self, text: str) -> int:
        """Pass the text on to the capture."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.capture.write(self.name_, text)
        return len(text)

    def flush(self) -> None:
        """Send what the capture holds."""
        self.capture.flush()


class ByteStream(io.RawIOBase):
    """`sys.stdout.buffer`: bytes decoded as UTF-8 (invalid bytes replaced) and passed to the text stream."""

    def __init__(self, text: TextStream) -> None:
        self.text = text
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.text.fd

    def write(self, data: bytes) -> int:  # type: ignore[override]
        """Pass the text on to the capture."""
        self.text.write(self.decoder.decode(bytes(data)))
        return len(data)


def exception_type_name(cls: type) -> str:
    """`ZeroDivisionError` for builtins, `module.Qualified` for the rest."""
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else module + "." + cls.__qualname__


def clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[sandrun: {len(text) - limit} more characters not shown]"


def clean_exit(exc: SystemExit) -> bool:
    """Whether a SystemExit means success: `sys.exit()`, `sys.exit(0)`, `SystemExit(None)`."""
    code = exc.code
    return code is None or (type(code) in (int, bool) and code == 0)


def describe_error(exc: BaseException, filename: str, limit: int) -> ErrorInfo:
    """Type, message, traceback without the driver's frames, and the failing line in the recipe file.

    A SystemExit's traceback leaves out the exceptions it was raised while handling: a CLI framework
    turns its own exceptions into `sys.exit(code)`, and their chain is the framework's, not the user's."""
    import traceback  # only on an error (with linecache, tokenize, re...): most recipes never need it

    report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    chain = not isinstance(exc, SystemExit)
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if frame.filename != DRIVER_FILENAME]
    )
    line = exc.lineno if isinstance(exc, SyntaxError) and exc.filename == filename else None
    for frame in report.stack:
        if frame.filename == filename:
            line = frame.lineno
    return {
        "type": exception_type_name(type(exc)),
        "types": [exception_type_name(c) for c in type(exc).__mro__ if issubclass(c, BaseException)],
        "message": clip(safe_str(exc), limit),
        "traceback": clip("".join(report.format(chain=chain)), limit),
        "line": line,
    }


class Interpreter:
    """The persistent namespace and the machinery to run one cell in it."""

    def __init__(self, capture: Capture, fd_pipes: dict[int, int]) -> None:
        self.capture = capture
        self.fd_pipes = fd_pipes
        main = types.ModuleType("__main__")  # a real module, so pickle and multiprocessing find cell code
        main.__builtins__ = builtins  # type: ignore[attr-defined]
        sys.modules["__main__"] = main
        self.namespace: dict[str, object] = main.__dict__
        self.sources: dict[str, list[str]] = {}
        self.running = False
        self.timeout = 0.0
        self.display = RichDisplay(capture)
        builtins.display = self.display.show  # type: ignore[attr-defined]
        self.display.hook.after["linecache"] = self.share_sources
        signal.signal(signal.SIGALRM, self.on_alarm)

    def remember_source(self, filename: str, first_line: int, code: str) -> None:
        """Let linecache show recipe lines in tracebacks although the file is not inside the sandbox."""
        lines = self.sources.setdefault(filename, [])
        new = split_lines(code)
        end = first_line - 1 + len(new)
        if len(lines) < end:
            lines.extend("\n" for _ in range(end - len(lines)))
        lines[first_line - 1 : end] = new
        linecache = sys.modules.get("linecache")
        if linecache is not None:  # else it gets them all when imported (by a traceback, a cell...)
            self.share_sources(linecache)

    def share_sources(self, linecache: types.ModuleType) -> None:
        """Put the recipe lines seen so far in linecache's cache."""
        for filename, lines in self.sources.items():
            linecache.cache[filename] = (0, None, lines, filename)  # mtime None: never re-read

    def condition(self, condition: dict[str, object], filename: str) -> types.CodeType:
        """A `skip_if` expression compiled at its line in the recipe, so that its errors point there."""
        text, line = str(condition["text"]).strip(), int(str(condition["line"]))
        self.remember_source(filename, line, text + "\n")
        tree = parse_at(text, filename, line)
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
            raise SyntaxError("a skip condition must be one expression", (filename, line, 1, text))
        return compile(ast.Expression(tree.body[0].value), filename, "eval", dont_inherit=True)

    def on_alarm(self, signum: int, frame: object) -> None:
        """SIGALRM: the running cell's time is up (raised at once, or as soon as a protocol line is out)."""
        if not self.running:
            return
        timeout = CellTimeout(f"the cell ran past its {self.timeout:g} s timeout")
        emitter = self.capture.emitter
        if emitter.busy:
            emitter.deferred = timeout
            return
        raise timeout

    def run(self, request: RunRequest) -> DoneFields:
        """Run one cell and describe how it ended (the `done` event without its id)."""
        filename, first_line, code = request["filename"], int(request["line"]), request["code"]
        timeout = self.timeout = request.get("timeout") or 0
        for fd, pipe in self.fd_pipes.items():
            os.dup2(pipe, fd)  # a previous cell may have closed or redirected fd 1 or 2
        self.remember_source(filename, first_line, code)
        limit = int(request.get("output_limit") or (1 << 20))
        self.capture.begin(request["id"], limit)
        self.display.begin(request["id"], int(request.get("display_limit") or DISPLAY_LIMIT))
        result: DoneFields = {"status": "ok"}
        started = time.perf_counter()
        compiling = True
        prints: StatementPrints | None = None
        try:
            recorder = self.capture if request.get("arrows") else None
            body, tail, prints = compile_cell(
                code, filename, first_line, bool(request.get("interactive")), recorder
            )
            condition = request.get("skip_if")
            test = self.condition(condition, filename) if condition else None
            compiling = False
            self.running = True
            if timeout:
                if GET_SIGNAL(signal.SIGALRM) != self.on_alarm:  # a cell installed its own
                    signal.signal(signal.SIGALRM, self.on_alarm)
                signal.setitimer(signal.ITIMER_REAL, float(timeout))
            try:
                value = None
                if test is not None and eval(test, self.namespace):
                    result["status"] = "skipped"
                else:
                    if prints is not None:
                        prints.start()
                    exec(body, self.namespace)
                    if prints is not None and tail is not None:
                        prints.mark(len(prints.statements) - 1)
                    value = eval(tail, self.namespace) if tail is not None else None
                    self.display.cell_end(value)
            finally:
                self.running = False
                self.capture.emitter.deferred = None
                if timeout:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                if prints is not None:  # after the timer: a late timeout cannot cut the record short
                    result["printed"] = prints.close()
            if value is not None:
                self.namespace["_"] = value
                result["value"] = clip(safe_repr(value), limit)
        except CellTimeout as exc:
            result["status"], result["error"] = "timeout", describe_error(exc, filename, limit)
        except SystemExit as exc:
            # `if __name__ == "__main__": app()` ends with sys.exit(0) when all went well: a clean end of
            # this cell (the interpreter lives on); a nonzero code is the cell's error, as in a shell
            if not clean_exit(exc):
                result["status"], result["error"] = "error", describe_error(exc, filename, limit)
        except BaseException as exc:
            if compiling:  # nothing of the cell ran: the parser's frames (ast.py) mean nothing to the user
                exc.__traceback__ = None
            result["status"], result["error"] = "error", describe_error(exc, filename, limit)
        result["duration"] = time.perf_counter() - started
        self.display.close_figures()
        self.capture.emitter.gather()  # the cell's last output goes out with its `done`
        for stream in (sys.stdout, sys.stderr):
            if not isinstance(stream, TextStream):  # ours are flushed by `end`
                stream.flush()
        truncated = self.capture.end()
        if truncated:
            result["truncated"] = truncated
        if self.display.dropped:
            result["display_dropped"] = self.display.dropped
        result["peak_memory"] = peak_memory()
        return result


class StatementPrints:
    """What each top-level statement of a cell wrote to stdout, asked for by cells with `#>` comments.

    A call to `mark` is put into the cell's syntax tree before each statement (none before the leading
    `from __future__` imports, which must come first): it sends what the previous statement left held
    and starts the record of the next. Cells without `#>` are compiled and run untouched.
    """

    NAME = "__sandrun_statement__"

    def __init__(self, capture: Capture, tree: ast.Module, last: ast.stmt | None) -> None:
        self.capture = capture
        statements = [*tree.body, *([last] if last is not None else [])]
        self.statements: list[tuple[int, int, list[str]]] = [
            (s.lineno, s.end_lineno or s.lineno, []) for s in statements
        ]
        """First line, last line and what was written, of each top-level statement."""
        futures = [isinstance(s, ast.ImportFrom) and s.module == "__future__" for s in tree.body]
        first = max((i + 1 for i, future in enumerate(futures) if future), default=0)
        body: list[ast.stmt] = tree.body[:first]
        for index, statement in enumerate(tree.body[first:], first):
            call = ast.Call(ast.Name(self.NAME, ast.Load()), [ast.Constant(index)], [])
            nodes = (mark := ast.Expr(call), call, call.func, *call.args)
            for node in nodes:  # `_ast` has no copy_location
                for field in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
                    setattr(node, field, getattr(statement, field, None))
            body += [mark, statement]
        tree.body = body

    def shift(self, lines: int) -> None:
        """The cell was compiled `lines` lines up from where it is in the recipe (`compile_cell`)."""
        self.statements = [(first + lines, end + lines, text) for first, end, text in self.statements]

    def start(self) -> None:
        """The cell runs: its marks can be called."""
        setattr(builtins, self.NAME, self.mark)

    def mark(self, index: int) -> None:
        """Statement `index` starts: what was written before it belongs to the one before."""
        self.capture.flush()
        self.capture.tee = self.statements[index][2]

    def close(self) -> list[list[object]]:
        """Stop recording; `[first line, last line, stdout]` of every top-level statement, in order."""
        try:
            self.capture.flush()
        finally:
            self.capture.tee = None
            builtins.__dict__.pop(self.NAME, None)
        return [[first, end, "".join(text)] for first, end, text in self.statements]


DISPLAY_LIMIT = 10 << 20
"""Bytes of rich output (bundles and metadata as sent: JSON, base64 for binary) a cell may display; past it,
a marker. Kept below the host's longest protocol line (16 MiB), escapes included."""
REPR_METHODS = (
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("image/svg+xml", "_repr_svg_"),
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
)
HOOKED_MODULES = ("matplotlib.pyplot", "IPython.core.display_functions")


class RichDisplay:
    """Rich output without IPython: `display()`, rich trailing values, matplotlib figures.

    Each displayed object becomes a `display` event `{"kind": "display"|"result", "data": {mime: text},
    "metadata": {...}}`; binary data is base64 text, `application/json` is JSON text, `text/plain` is
    always there. Nothing is imported at start-up: matplotlib and IPython are hooked when a cell imports
    them (`ImportHook`), and figures are looked for only if `matplotlib.pyplot` is in `sys.modules`.
    """

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.cell_id: int | None = None
        self.limit = DISPLAY_LIMIT
        self.sent = 0
        self.dropped = 0
        os.environ.setdefault("MPLBACKEND", "Agg")  # children too: no figure window, no blocking show()
        self.hook = ImportHook({name: self.patcher(name) for name in HOOKED_MODULES})
        sys.meta_path.insert(0, self.hook)  # type: ignore[arg-type]

    def begin(self, cell_id: int, limit: int) -> None:
        """Attribute displays to `cell_id`, with a fresh budget of `limit` bytes."""
        self.cell_id, self.limit, self.sent, self.dropped = cell_id, limit, 0, 0

    def show(self, *objs: object, **kwargs: object) -> None:
        """`display(obj, ...)`: show each object as rich output, in order with the cell's text output."""
        raw = bool(kwargs.get("raw"))
        for obj in objs:
            if raw and isinstance(obj, dict):
                self.send("display", {str(k): encode_mime(str(k), v) for k, v in obj.items()}, {})
            else:
                self.send("display", *self.bundle(obj))

    def cell_end(self, value: object) -> None:
        """At the end of a cell that ran: its open figures, then its trailing value if it is rich."""
        self.show_figures()
        if value is not None and has_rich_repr(value):
            data, metadata = self.bundle(value)
            if len(data) > 1:
                self.send("result", data, metadata)

    def bundle(self, obj: object) -> tuple[dict[str, object], dict[str, object]]:
        """The MIME bundle and metadata of `obj`, from its `_repr_*_` methods; `text/plain` always."""
        data: dict[str, object] = {}
        metadata: dict[str, object] = {}
        if not isinstance(obj, type):  # a class has these methods unbound: not a representation of itself
            method = rich_method(obj, "_repr_mimebundle_")
            if method is not None:
                try:
                    found = method(include=None, exclude=None)  # type: ignore[operator]
                except TypeError:
                    found = self.call(obj, method)
                except BaseException as exc:
                    self.failed(obj, "_repr_mimebundle_", exc)
                    found = None
                if isinstance(found, tuple) and len(found) == 2:
                    found, metadata = found
                    metadata = dict(metadata) if isinstance(metadata, dict) else {}
                if isinstance(found, dict):
                    data.update((str(k), v) for k, v in found.items() if v is not None)
            for mime, name in REPR_METHODS:
                if mime in data:
                    continue
                method = rich_method(obj, name)
                if method is None:
                    continue
                found = self.call(obj, method)
                if isinstance(found, tuple) and len(found) == 2:
                    found, metadata[mime] = found
                if found is not None:
                    data[mime] = found
        data = {mime: encode_mime(mime, value) for mime, value in data.items()}
        data["text/plain"] = data.get("text/plain") or clip(safe_repr(obj), self.capture.limit)
        return data, metadata

    def call(self, obj: object, method: object) -> object:
        """A representation method's result, or None (and a note on stderr) if it raised."""
        try:
            return method()  # type: ignore[operator]
        except BaseException as exc:
            self.failed(obj, getattr(method, "__name__", "repr"), exc)
            return None

    def failed(self, obj: object, name: str, exc: BaseException) -> None:
        """Say on stderr that a representation method raised (as IPython does), and go on without it."""
        where = f"{type(obj).__name__}.{name}"
        sys.stderr.write(f"sandrun: {where} raised {exception_type_name(type(exc))}: {safe_str(exc)}\n")

    def send(self, kind: str, data: dict[str, object], metadata: dict[str, object]) -> None:
        """One `display` event, after all output written before it; a marker once the budget is spent."""
        if self.cell_id is None:
            return
        self.capture.flush()
        try:  # the size as sent (escapes and UTF-8 included): the protocol line must stay within bounds
            size = len(to_json([data, metadata]).encode("utf-8", "replace"))
        except (TypeError, ValueError, RecursionError):  # metadata the protocol cannot carry is left out
            metadata = {}
            size = len(to_json(data).encode("utf-8", "replace"))
        if self.sent + size > self.limit:
            self.dropped += size
            note = f"[sandrun: a display of {size} bytes not shown; the limit is {self.limit} bytes per cell]"
            data, metadata = {"text/plain": note}, {}
        else:
            self.sent += size
        line = {"ev": "display", "id": self.cell_id, "kind": kind, "data": data, "metadata": metadata}
        self.capture.emitter.send(line)

    def show_figures(self) -> None:
        """Every open matplotlib figure as a PNG display, then closed (Jupyter's inline backend does so)."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return
        for number in pyplot.get_fignums():
            figure = pyplot.figure(number)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
            data = {"text/plain": safe_repr(figure), "image/png": buffer.getvalue()}
            pyplot.close(figure)
            self.send("display", {k: encode_mime(k, v) for k, v in data.items()}, {})

    def close_figures(self) -> None:
        """Close figures a failed cell left open, so that the next cell does not show them."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            try:  # noqa: SIM105 - contextlib is one import more
                pyplot.close("all")
            except BaseException:
                pass

    def patcher(self, name: str) -> Callable[[types.ModuleType], None]:
        """What `ImportHook` calls after `name` is imported."""
        return lambda module: self.patch(name, module)

    def patch(self, name: str, module: types.ModuleType) -> None:
        """After `module` is imported: `plt.show()` captures figures; IPython's `display` shows here."""
        if name == "matplotlib.pyplot":

            def show(*args: object, **kwargs: object) -> None:
                """Show every open figure as rich output (sandrun captures figures: no window opens)."""
                self.show_figures()

            module.show = show  # type: ignore[attr-defined]
        else:

            def display(*objs: object, **kwargs: object) -> None:
                """IPython's `display`, shown as sandrun rich output."""
                self.show(*objs, raw=kwargs.get("raw", False))

            module.display = display  # type: ignore[attr-defined]


class ImportHook:
    """A meta path finder that lets the driver adjust a few modules right after their first import.

    Why a hook: `plt.show()` must capture in the very cell that imports pyplot, and the driver must not
    import matplotlib itself; linecache must know the recipe's lines, and the driver must not import it
    at every start. For any other name it answers None at once (one call per new import).
    """

    def __init__(self, after: dict[str, Callable[[types.ModuleType], None]]) -> None:
        self.after = after
        """Module name -> what to call with the module once it is imported."""

    def find_spec(
        self, name: str, path: list[str] | None = None, target: types.ModuleType | None = None
    ) -> object:
        """The usual spec of a hooked module, with a loader that patches it; None for the rest."""
        after = self.after.get(name)
        if after is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):  # type: ignore[comparison-overlap]
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = PatchingLoader(spec.loader, after)  # type: ignore[assignment]
            if spec is not None:
                return spec
        return None


class PatchingLoader:
    """Loads a module with its own loader, then passes it to `after`."""

    def __init__(self, loader: object, after: Callable[[types.ModuleType], None]) -> None:
        self.loader, self.after = loader, after

    def create_module(self, spec: object) -> object:
        """What the real loader creates (usually None: the default module)."""
        return self.loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the module's code, then patch it."""
        self.loader.exec_module(module)  # type: ignore[attr-defined]
        self.after(module)


def rich_method(obj: object, name: str) -> object:
    """`obj.name` if it is a callable representation method, else None (never raises)."""
    try:
        method = getattr(obj, name, None)
    except BaseException:
        return None
    return method if callable(method) else None


def has_rich_repr(value: object) -> bool:
    """Whether the value's class has any `_repr_*_` method (cheap: no call, no instance lookup)."""
    cls = type(value)
    if cls in (int, float, str, bool, bytes, list, tuple, dict, set, complex):
        return False
    try:  # a metaclass's __getattr__ may raise anything: then the value is shown as plain text
        return hasattr(cls, "_repr_mimebundle_") or any(hasattr(cls, name) for _, name in REPR_METHODS)
    except BaseException:
        return False


def encode_mime(mime: str, value: object) -> str:
    """A MIME value as protocol text: bytes as base64, JSON data as JSON text, the rest as `str`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        import base64  # only when a cell shows binary data

        return base64.b64encode(bytes(value)).decode("ascii")
    if mime == "application/json" or mime.endswith("+json"):
        if isinstance(value, str):
            return value
        import json  # only for a JSON display that is not text already

        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return safe_repr(value)
    return value if isinstance(value, str) else safe_repr(value)


def compile_cell(
    code: str, path: str, first_line: int, interactive: bool = False, capture: Capture | None = None
) -> tuple[types.CodeType, types.CodeType | None, StatementPrints | None]:
    """The cell's code, and apart the code of its trailing expression (whose value is shown), numbered from
    the cell's line in the recipe, in its code objects and in the syntax errors and warnings of compiling;
    with `capture`, the `StatementPrints` that records each top-level statement's stdout into it.

    `interactive`: compiled as a console compiles (every expression statement's value is shown). Never
    with the driver's own `from __future__` imports. Compiled as if the cell began at line 1, then
    renumbered: a cell far down a long recipe costs no more than the first one (no blank lines to scan,
    no syntax tree to walk). A cell that warns or fails when compiled that way is compiled again where it
    is in the recipe, so that what the compiler says (shown as the cells' warning filters say) names the
    recipe's lines: only then is the pure-Python `warnings` module imported."""
    shift = first_line - 1
    if not shift:
        return compile_at_1(code, path, interactive, capture)
    filters = getattr(sys.modules.get("warnings", _warnings), "filters", None)  # those the compiler obeys
    if isinstance(filters, list):
        # this compile's warnings made errors: an exact module name matches the one the compiler derives
        # from the file name
        strict = ("error", None, Warning, path[:-3] if path.endswith(".py") else path, 0)
        filters.insert(0, strict)
        try:
            body, tail, prints = compile_at_1(code, path, interactive, capture)
            return renumbered(body, tail, prints, shift)
        except Exception:  # an error, or a warning made one: compiled again below, as it would be
            pass
        finally:
            filters.remove(strict)
    import warnings  # noqa: F401 - what it says is shown by `warnings.showwarning`, with the cell's source line

    return compile_at_1("\n" * shift + code, path, interactive, capture)


def renumbered(
    body: types.CodeType, tail: types.CodeType | None, prints: StatementPrints | None, shift: int
) -> tuple[types.CodeType, types.CodeType | None, StatementPrints | None]:
    """What `compile_at_1` gave, moved down `shift` lines."""
    if prints is not None:
        prints.shift(shift)
    return renumber(body, shift), renumber(tail, shift) if tail is not None else None, prints


def compile_at_1(
    code: str, path: str, interactive: bool, capture: Capture | None
) -> tuple[types.CodeType, types.CodeType | None, StatementPrints | None]:
    """`compile_cell` for a cell at line 1."""
    # a Module (PyCF_ONLY_AST in "exec" mode); never with the driver's own `from __future__` imports
    tree: ast.Module = compile(code, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)  # type: ignore[assignment]
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    prints = StatementPrints(capture, tree, last) if capture is not None else None
    if interactive:  # a console shows every expression statement's value
        body = compile(ast.Interactive(tree.body), path, "single", dont_inherit=True)
    else:
        body = compile(tree, path, "exec", dont_inherit=True)
    tail = None
    if isinstance(last, ast.Expr):
        tail = compile(ast.Expression(last.value), path, "eval", dont_inherit=True)
    return body, tail, prints


def renumber(code: types.CodeType, shift: int) -> types.CodeType:
    """`code` and the code objects inside it (functions, classes) moved down `shift` lines: line numbers
    are stored relative to each code object's first line."""
    if not shift:
        return code
    consts = code.co_consts
    if any(isinstance(const, types.CodeType) for const in consts):
        consts = tuple(renumber(c, shift) if isinstance(c, types.CodeType) else c for c in consts)
    return code.replace(co_firstlineno=code.co_firstlineno + shift, co_consts=consts)


def split_lines(code: str) -> list[str]:
    """The lines of `code`, each with its end, cut where Python's tokenizer cuts: at \\n, \\r\\n and \\r, not
    at U+2028 or form feeds as `str.splitlines` does."""
    if "\r" in code:
        return io.StringIO(code, newline="").readlines()
    lines = code.split("\n")
    last = lines.pop()
    lines = [line + "\n" for line in lines]
    if last:
        lines.append(last)
    return lines


def parse_at(code: str, filename: str, first_line: int) -> ast.Module:
    """The syntax tree of `code`, numbered from its line in the recipe (a skip condition's)."""
    try:
        tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        for name in ("lineno", "end_lineno"):
            if getattr(exc, name, None) is not None:
                setattr(exc, name, getattr(exc, name) + first_line - 1)
        raise
    if first_line > 1:
        shift_lines(tree, first_line - 1)
    return tree  # type: ignore[return-value]  # PyCF_ONLY_AST with "exec" gives a Module


def shift_lines(tree: ast.AST, offset: int) -> None:
    """Add `offset` to every line number in `tree` (what `ast.increment_lineno` does, without importing
    the `ast` module)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        for name in node._attributes:
            if name.endswith("lineno") and getattr(node, name, None) is not None:
                setattr(node, name, getattr(node, name) + offset)
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                todo.append(value)
            elif isinstance(value, list):
                todo.extend(item for item in value if isinstance(item, ast.AST))


def safe_repr(value: object) -> str:
    """`repr(value)`, or a note saying why it could not be computed."""
    try:
        return repr(value)
    except BaseException as exc:
        return f"<repr failed: {exception_type_name(type(exc))}: {safe_str(exc)}>"


def safe_str(exc: BaseException) -> str:
    """`str(exc)`, even when the exception's own `__str__` is broken."""
    try:
        return str(exc)
    except BaseException:
        return f"<unprintable {type(exc).__name__}>"


def peak_memory() -> int | None:
    """Peak resident memory of this process in bytes, where the platform tells it."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def apply_limits(limits: dict[str, int]) -> dict[str, dict[str, object]]:
    """Set each `RLIMIT_*` soft and hard limit (CPU: hard one second later, so SIGXCPU names the cause).

    Hard limits cannot be raised again without privileges the sandbox does not have.
    """
    import resource

    applied: dict[str, object] = {}
    errors: dict[str, object] = {}
    for name, value in limits.items():
        try:
            kind = getattr(resource, name)
            pair = (value, value + 1 if name == "RLIMIT_CPU" else value)
            resource.setrlimit(kind, pair)
            if REAPER is not None:
                resource.prlimit(REAPER, kind, pair)  # pid 1 is ours too: no process is left unlimited
            applied[name] = value
        except (AttributeError, ValueError, OSError) as exc:
            errors[name] = str(exc)
    return {"applied": applied, "errors": errors}


def take_over_standard_fds() -> tuple[int, int, dict[str, int], dict[int, int]]:
    """Move the protocol to private fds; make fd 0 empty and fds 1/2 pipes we read.

    Returns (protocol in, protocol out, read ends by stream name, write ends by fd number).
    """
    proto_in, proto_out = os.dup(0), os.dup(1)  # os.dup gives non-inheritable fds: children never see them
    empty_r, empty_w = os.pipe()
    os.close(empty_w)
    os.dup2(empty_r, 0)
    os.close(empty_r)
    readers, writers = {}, {}
    for fd, name in ((1, "stdout"), (2, "stderr")):
        r, w = os.pipe()
        os.dup2(w, fd)
        readers[name], writers[fd] = r, w
    return proto_in, proto_out, readers, writers


def stay_pid_1_as_reaper() -> None:
    """When started as pid 1 of a PID namespace (bubblewrap's `--as-pid-1`), fork: the parent stays pid 1,
    holding nothing (its stdio on /dev/null), and only reaps orphans; the child goes on as the driver.

    Why not let bubblewrap's own init be pid 1: every cell can open /proc/1, and that init held bubblewrap's
    stderr and showed bubblewrap's whole command line. Why not be pid 1 ourselves: pid 1 ignores the
    signals that a cell sends itself without a handler, and orphans would pile up as zombies.
    """
    global REAPER
    if os.getpid() != 1:
        return
    child = os.fork()
    if child:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for name in os.listdir("/proc/self/fd"):  # cheaper than closerange where close_range is missing
            if int(name) > 2:
                try:  # noqa: SIM105 - contextlib is one more import on every start
                    os.close(int(name))
                except OSError:
                    pass  # the listing's own fd, closed already
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                os._exit(0)
            if pid == child:  # the driver is gone: so is the sandbox (the kernel kills the rest)
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)
    REAPER = 1


def main() -> None:
    """Serve run requests until the host closes the channel."""
    stay_pid_1_as_reaper()
    proto_in, proto_out, readers, writers = take_over_standard_fds()
    emitter = Emitter(proto_out)
    capture = Capture(emitter, readers)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the interpreter
    sys.stdout = TextStream("stdout", 1, capture)
    sys.stderr = TextStream("stderr", 2, capture)
    sys.argv = [""]
    sys.path.insert(0, "")
    interpreter = Interpreter(capture, writers)
    driver_pid = os.getpid()
    requests = os.fdopen(proto_in, "rb")
    emitter.send({"ev": "ready", "python": sys.version.split()[0], "pid": driver_pid})
    last: tuple[object, bool] = (None, False)  # the last cell answered, and whether cells `after` it run
    for raw in requests:
        request = from_json(raw.decode("utf-8"))
        if request.get("op") == "limits":
            emitter.send({"ev": "limits", **apply_limits(request["limits"])})
            continue
        if request.get("op") != "run":
            emitter.send({"ev": "fatal", "message": f"unknown request {request.get('op')!r}"})
            continue
        after = request.get("after")
        if after is not None and last != (after, True):  # sent ahead of a cell that did not end ok
            emitter.send({"ev": "done", "id": request["id"], "status": "skipped"})
            last = (request["id"], False)
            continue
        done = interpreter.run(request)
        if os.getpid() != driver_pid:
            os._exit(0)  # a cell forked and the child fell through to here: it must not answer too
        # a cell skipped by its own condition is no failure: the cells sent after it still run
        last = (request["id"], done["status"] in ("ok", "skipped"))
        emitter.finish({"ev": "done", "id": request["id"], **done})
    # The host closed the channel: the recipe is over and nobody reads any more. End at once rather than
    # through the interpreter's slow shutdown; the cells' atexit handlers do not run (nor did they reliably
    # before: the host kills the sandbox as it closes the channel).
    os._exit(0)


if __name__ == "__main__":
    main()

"""The data that flows through sandrun: recipes in, transcripts out.

Everything here is a frozen dataclass, so a recipe or a transcript can be compared, serialised and handed
between threads without surprises. They are not hashable: a few fields are plain dicts (`Recipe.env`,
`Transcript.limits`, rich output's `data`), which nothing changes after they are built. Readers build
`Recipe`s, the runner builds `CellResult`s and a `Transcript`, and reports render a `Transcript`; none of
them needs anything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

TRANSCRIPT_SCHEMA = "sandrun.transcript/4"

MAX_TIMEOUT = 7 * 24 * 3600.0
"""The longest timeout, in seconds, a recipe or the command line may ask for (one week)."""

NO_ISOLATION = "none"
"""The `isolation` of a backend that isolates nothing (`process`): cells run with the user's permissions."""

ANY_EXCEPTION = "*"
"""`Expectation.error` value that accepts any exception (the `raises-exception` tag)."""


class CellKind(str, Enum):
    """What a cell is: only `code` cells run; the others are kept for the transcript."""

    CODE = "code"
    MARKDOWN = "markdown"
    RAW = "raw"


class CellStatus(str, Enum):
    """How one cell ended."""

    PASSED = "passed"
    """It ran and did what the recipe expected (which may be raising an expected exception)."""
    FAILED = "failed"
    """It ran and did not do what the recipe expected: an unexpected exception, or a missing one."""
    ERROR = "error"
    """The sandbox failed while the cell ran (it died, or broke the protocol): not the cell's own doing."""
    TIMEOUT = "timeout"
    """It ran past its time limit and was interrupted (or its sandbox killed)."""
    SKIPPED = "skipped"
    """The recipe asked not to run it, or it is not code."""
    NOT_RUN = "not_run"
    """It was never sent: an earlier cell stopped the run. `CellResult.reason` says why."""


class RunStatus(str, Enum):
    """How a whole recipe run ended."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    """Not run at all: the project's pyproject.toml skips the file (a report lists it beside the runs)."""


@dataclass(frozen=True)
class Expectation:
    """What a cell is expected to do: raise (or not), and print or evaluate to what the recipe says."""

    error: str | None = None
    """Name of the exception the cell must raise (`ZeroDivisionError`, or a dotted name), `ANY_EXCEPTION`
    for any exception, or None when the cell must not raise."""
    error_message: str | None = None
    """A regular expression the raised exception's message must contain (`re.search`)."""
    stdout: ExpectedText | None = None
    stderr: ExpectedText | None = None
    value: ExpectedText | None = None
    """The `repr` of the cell's trailing expression."""
    repl: ExpectedText | None = None
    """What a Python REPL would show: stdout, then the trailing expression's `repr` on its own line
    (used for `>>>` examples copied from a console)."""

    def texts(self) -> dict[str, ExpectedText]:
        """The expected texts that are set, by what they are about (`stdout`, `stderr`, `value`, `repl`)."""
        named = {"stdout": self.stdout, "stderr": self.stderr, "value": self.value, "repl": self.repl}
        return {name: text for name, text in named.items() if text is not None}


class MatchMode(str, Enum):
    """How expected text is compared with actual text (trailing newlines never matter)."""

    ELLIPSIS = "ellipsis"
    """The default, like doctest: `...` in the expected text matches anything, even several lines."""
    EXACT = "exact"
    REGEX = "regex"
    """The expected text is a regular expression that must match the whole actual text."""
    WHITESPACE = "whitespace"
    """Runs of whitespace (newlines too) count as one space; leading and trailing whitespace is ignored."""


MATCH_MODES = tuple(mode.value for mode in MatchMode)
"""The names recipes use for match modes."""


def is_exception_name(name: str) -> bool:
    """Whether `name` can name an exception class: `ValueError`, `json.JSONDecodeError`, `ANY_EXCEPTION`."""
    return name == ANY_EXCEPTION or all(part.isidentifier() for part in name.split("."))


@dataclass(frozen=True)
class ExpectedText:
    """Text a cell must produce, where it is written in the recipe file, and how to compare it."""

    text: str
    mode: MatchMode = MatchMode.ELLIPSIS
    line: int | None = None
    """1-based line in the recipe where the expected text starts (for messages and annotations)."""
    span: tuple[int, int] | None = None
    """Character offsets [start, end) of the expected text in the recipe file, for `--update`."""
    doctest: frozenset[str] = frozenset()
    """doctest option flags that change the comparison (`NORMALIZE_WHITESPACE`, `NUMBER`, ...), from a
    `# doctest:` directive."""


@dataclass(frozen=True)
class Condition:
    """A Python expression written in a document (Sphinx's `:skipif:`): it is code from the file, so it is
    evaluated only inside the sandbox, in the recipe's interpreter, just before its cell."""

    text: str
    line: int
    """1-based line in the recipe file where the expression is written."""


@dataclass(frozen=True)
class Cell:
    """One unit of a recipe, as written in its file."""

    index: int
    """Position in the recipe, from 0, counting every cell (markdown ones too)."""
    source: str
    """The code (or prose, for markdown cells) exactly as it is to be run or shown."""
    path: str
    """The recipe file as the user named it; used as the filename in tracebacks."""
    line: int
    """1-based line in `path` where `source` begins, so that line N of the source is line `line + N - 1`."""
    kind: CellKind = CellKind.CODE
    name: str | None = None
    """Optional title (YAML `name`, or the text after `# %%`)."""
    tags: tuple[str, ...] = ()
    timeout: float | None = None
    """Seconds this cell may run; None means the recipe's or the command line's default."""
    skip: bool = False
    expect: Expectation = field(default_factory=Expectation)
    unsupported: str | None = None
    """Why sandrun cannot run this block that looks like Python (an unknown language variant, a directive
    it does not run), when a reader found one: such a cell is skipped and listed, never silently left out,
    and `--strict` counts it as a failure."""
    skip_reason: str | None = None
    """What in the file says not to run this cell (`:options: +SKIP`, a `skip` tag...), in the words the
    transcript gives as the reason; None for a YAML recipe's `skip: true`."""
    skip_if: Condition | None = None
    """Sphinx's `:skipif:`: the cell is skipped when this expression is true inside the sandbox."""

    @property
    def why_skipped(self) -> str:
        """Why this cell is not run when `skip` is set, as a transcript says it."""
        return self.unsupported or self.skip_reason or "skip: true in the recipe"

    @property
    def label(self) -> str:
        """A short human name: the title if any, else `cell N` (1-based)."""
        return self.name or f"cell {self.index + 1}"

    @property
    def location(self) -> str:
        """`path:line`, the place an editor or a CI annotation should jump to."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file: settings plus cells in order."""

    path: str
    """The file as the user named it."""
    sha256: str
    """Hex digest of the file's bytes, so a transcript says exactly what ran."""
    format: str
    """Which reader produced it: `yaml`, `percent`, `markdown`, `rst` or `ipynb` (`skipped` for a file the
    project's settings skip)."""
    cells: tuple[Cell, ...]
    name: str | None = None
    description: str | None = None
    timeout: float | None = None
    """Default per-cell timeout in seconds for this recipe."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables set inside the sandbox."""
    network: bool | None = None
    """Whether cells may use the network; None leaves it to the command line (off by default)."""
    python: str | None = None
    """Interpreter to run inside the sandbox; None means the backend's default."""
    files: tuple[str, ...] = ()
    """Files (relative to the recipe's directory) copied into the work directory before the run."""
    backend: str | None = None
    """Where the recipe wants to run (`local`, `modal`, ...); the command line's --backend wins."""
    packages: tuple[str, ...] = ()
    """pip requirement strings the interpreter inside must have (installed before the run, with network)."""
    warnings: tuple[str, ...] = ()
    """Problems the reader noticed that do not stop a run (`path:line: what`), shown before it starts."""

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        """The cells that are meant to run."""
        return tuple(c for c in self.cells if c.kind is CellKind.CODE)


DISPLAY = "display"
"""`OutputChunk.stream` of rich output from `display()` or a matplotlib figure (Jupyter's display_data)."""
RESULT = "result"
"""`OutputChunk.stream` of a trailing expression's rich value (Jupyter's execute_result); its text/plain is
`CellResult.value`."""
RICH_KINDS = (DISPLAY, RESULT)


@dataclass(frozen=True)
class OutputChunk:
    """A piece of output in the order it was produced: text of a stream, or a rich display."""

    stream: str
    """`stdout` or `stderr` for text; `display` or `result` for rich output (then `data` is set)."""
    text: str
    """The text written; for rich output, its `text/plain` representation."""
    data: Mapping[str, str] | None = None
    """Rich output's MIME bundle: MIME type to text (binary data as base64, JSON as JSON text)."""
    metadata: Mapping[str, object] | None = None
    """Rich output's metadata (e.g. an image's size), as the object gave it."""

    @property
    def rich(self) -> bool:
        """Whether this is rich output (a MIME bundle) rather than stream text."""
        return self.data is not None


@dataclass(frozen=True)
class CellError:
    """An exception raised by a cell, or a failure of the sandbox while it ran."""

    type: str
    """Exception class name (qualified with its module unless builtin), or a sandrun failure name."""
    message: str
    traceback: str = ""
    """Formatted like Python's, with sandrun's own frames removed."""
    line: int | None = None
    """Line in the recipe file of the innermost frame in it, when known."""


@dataclass(frozen=True)
class StatementOutput:
    """What one top-level statement of a cell printed (recorded for cells with `#>` comments only)."""

    line: int
    """1-based line in the recipe file where the statement starts."""
    end_line: int
    """1-based line in the recipe file where it ends."""
    stdout: str


@dataclass(frozen=True)
class CellResult:
    """What happened when a cell was (or was not) run."""

    cell: Cell
    status: CellStatus
    outputs: tuple[OutputChunk, ...] = ()
    """Stream text and rich output, in the order the cell produced them."""
    value: str | None = None
    """`repr` of a trailing expression's value, like a REPL shows it."""
    error: CellError | None = None
    duration: float = 0.0
    """Seconds, measured on the host, from the moment the cell could start (it was sent and the cells before
    it were done) to its result."""
    reason: str | None = None
    """Why the cell has its status, in words, when the status alone does not say (failed, not run, ...)."""
    diff: str | None = None
    """Unified diff, expected against actual, when the cell failed because its output did not match."""
    mismatch: str | None = None
    """Which of the cell's expected texts did not match (`stdout`, `stderr`, `value` or `repl`), when that
    is why it failed; the key of `Expectation.texts()`."""
    mismatch_line: int | None = None
    """The line of the recipe file where the output that did not match is expected, when it is known:
    the expected text's line, or that of the first `#>` comments that do not say what their statement
    printed (the statement's own line when it printed without any)."""
    peak_memory: int | None = None
    """Peak resident memory of the interpreter so far, in bytes, as reported inside the sandbox."""
    printed: tuple[StatementOutput, ...] | None = None
    """stdout by top-level statement, for a cell whose code has `#>` comments (see `sandrun.arrows`);
    None for other cells. Not written to JSON transcripts."""

    @property
    def stdout(self) -> str:
        """All stdout text, concatenated."""
        return stream_text(self.outputs, "stdout")

    @property
    def stderr(self) -> str:
        """All stderr text, concatenated."""
        return stream_text(self.outputs, "stderr")


@dataclass(frozen=True)
class Transcript:
    """The record of one recipe run: what ran, where, and how every cell ended."""

    recipe: Recipe
    backend: str
    isolation: str
    """What the sandbox isolated, e.g. `NO_ISOLATION` (`none`) for the process backend."""
    status: RunStatus
    results: tuple[CellResult, ...]
    started_at: str
    """UTC, ISO 8601."""
    duration: float
    tool_version: str
    python_version: str | None = None
    """Version of the interpreter inside the sandbox, if it started."""
    reason: str | None = None
    """Why the run ended early (sandbox died, interrupted, could not start), if it did."""
    limits: Mapping[str, object] = field(default_factory=dict)
    """Limits in force (timeouts, output caps, ...), for the record."""

    @property
    def isolates_nothing(self) -> bool:
        """Whether the cells ran with the user's own permissions, in no sandbox at all."""
        return self.isolation == NO_ISOLATION

    def count(self, status: CellStatus) -> int:
        """How many cells ended with `status`."""
        return sum(1 for r in self.results if r.status is status)


OUTPUT_CUT = "[sandrun: {dropped} more bytes of {stream} not shown; the limit is {limit} bytes]"
"""The note, on a line of its own, that ends a stream's text when a cell wrote more than the output limit."""

VALUE_CUT = "[sandrun: {dropped} more characters not shown]"
"""The note, on a line of its own, that ends a value's repr (or an error's text) longer than the output limit.
The driver writes it, and imports nothing of sandrun: a test keeps its copy the same as this one."""

_CUT = re.compile(
    "|".join(
        re.escape(note)
        .replace(r"\{dropped\}", r"\d+")
        .replace(r"\{stream\}", r"\w+")
        .replace(r"\{limit\}", r"\d+")
        for note in (OUTPUT_CUT, VALUE_CUT)
    )
)


def is_cut(text: str) -> bool:
    """Whether sandrun left part of `text` out: it holds an `OUTPUT_CUT` or a `VALUE_CUT` note."""
    return _CUT.search(text) is not None


def stream_text(outputs: Iterable[OutputChunk], stream: str) -> str:
    """The text of every chunk of `stream` among `outputs`, in order."""
    return "".join(chunk.text for chunk in outputs if chunk.stream == stream)


def merged_runs(outputs: Iterable[OutputChunk]) -> list[OutputChunk]:
    """`outputs` in the shape a session records them (reports accept any): empty text left out, the text of
    consecutive chunks of one stream joined into one chunk, rich output on its own."""
    runs: list[tuple[str, list[str]] | OutputChunk] = []
    for chunk in outputs:
        last = runs[-1] if runs else None
        if chunk.rich:
            runs.append(chunk)
        elif isinstance(last, tuple) and last[0] == chunk.stream:
            last[1].append(chunk.text)
        elif chunk.text:
            runs.append((chunk.stream, [chunk.text]))
    return [run if isinstance(run, OutputChunk) else OutputChunk(run[0], "".join(run[1])) for run in runs]

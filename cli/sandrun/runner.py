"""Running a recipe: one session, cells in order, the error policy, and the transcript at the end.

The runner never prints. Whoever wants to show progress passes a `RunListener`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sandrun import __version__
from sandrun.backends.base import Backend, Limits, SandboxOptions
from sandrun.defaults import DEFAULT_CELL_TIMEOUT
from sandrun.errors import BackendError
from sandrun.expect import judge
from sandrun.model import (
    Cell,
    CellError,
    CellKind,
    CellResult,
    CellStatus,
    OutputChunk,
    Recipe,
    RunStatus,
    Transcript,
    stream_text,
)
from sandrun.session import (
    DEFAULT_GRACE,
    DEFAULT_OUTPUT_LIMIT,
    CellOutcome,
    CellRequest,
    OutputRuns,
    Session,
    Submitted,
)

if TYPE_CHECKING:
    from sandrun.early import EarlySandbox
    from sandrun.prestart import Prestarter

UNEXPECTED = (CellStatus.FAILED, CellStatus.TIMEOUT, CellStatus.ERROR)
AHEAD = 2
"""Cells sent to the interpreter while an earlier one runs (see `_Run.send_ahead`)."""


@dataclass(frozen=True)
class RunOptions:
    """How to run, as chosen on the command line."""

    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    """Seconds per cell unless the cell or the recipe says otherwise (the most specific setting wins)."""
    keep_going: bool = False
    """Run every cell even after one failed (a dead sandbox still stops the run)."""
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    """Bytes kept per stream per cell."""
    grace: float = DEFAULT_GRACE
    """Seconds a timed-out cell gets to stop before the sandbox is killed."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables added to (and overriding) the recipe's `env`."""
    python: str | None = None
    """Interpreter inside the sandbox; overrides the recipe's `python`."""
    cache_dir: Path | None = None
    """Where environments for recipe `packages` are kept (None: nowhere, so such recipes cannot run)."""
    workdir: Path | None = None
    network: bool | None = None
    """Overrides the recipe's `network`; None keeps it (off unless the recipe turns it on)."""
    limits: Limits = field(default_factory=Limits)


class RunListener(Protocol):
    """Receives progress while a recipe runs (for live terminal output)."""

    def cell_started(self, cell: Cell) -> None:
        """A code cell was sent to the sandbox."""

    def cell_output(self, cell: Cell, chunk: OutputChunk) -> None:
        """The running cell wrote something."""

    def cell_finished(self, result: CellResult) -> None:
        """A cell has its final result (also for skipped and not-run cells)."""


class _Silent:
    def cell_started(self, cell: Cell) -> None:
        pass

    def cell_output(self, cell: Cell, chunk: OutputChunk) -> None:
        pass

    def cell_finished(self, result: CellResult) -> None:
        pass


class RunControl:
    """Stops runs going on in other threads (Ctrl-C while several recipes run at once)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._sessions: set[Session] = set()

    def attach(self, session: Session) -> None:
        """Follow a live session, so that `cancel` can stop it."""
        with self._lock:
            self._sessions.add(session)
            if self.cancelled.is_set():
                session.interrupt()

    def detach(self, session: Session) -> None:
        """Stop following a session that is closed."""
        with self._lock:
            self._sessions.discard(session)

    def cancel(self) -> None:
        """Mark every run interrupted and kill every live sandbox."""
        with self._lock:
            self.cancelled.set()
            for session in self._sessions:
                session.interrupt()


def run_recipe(
    recipe: Recipe,
    backend: Backend,
    options: RunOptions,
    listener: RunListener | None = None,
    control: RunControl | None = None,
    ahead: Prestarter | None = None,
    index: int = 0,
) -> Transcript:
    """Run every cell of `recipe` in one sandbox and return the transcript. Never raises for cell failures,
    sandbox failures or Ctrl-C (or `control.cancel()`): they are recorded in the transcript instead.

    With `ahead`, the recipe is run `index` of those it starts sandboxes for: the sandbox it started for
    this recipe (if any) is used, and the next recipes' sandboxes are started while this one runs."""
    control = control or RunControl()
    run = _Run(recipe, options, listener or _Silent(), control)
    started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    started = time.monotonic()
    session: Session | None = None
    starting: list[Session] = []
    sandbox = sandbox_options(recipe, options)

    def follow(new: Session) -> None:
        starting.append(new)
        control.attach(new)

    try:
        session = ahead.take(index) if ahead else None
        if session is not None:
            follow(session)  # this recipe's own, started ahead for it alone; closed below like any other
        if control.cancelled.is_set():
            raise KeyboardInterrupt
        if session is None:
            sandbox = prepare_packages(recipe, backend, sandbox, options.cache_dir)
            if control.cancelled.is_set():
                raise KeyboardInterrupt
            session = Session.launch(backend, sandbox, options.output_limit, on_started=follow)
        if ahead:
            ahead.advance(index)  # the next recipes' sandboxes boot while this one waits and runs
        session.wait_ready()
        run.cells(session)
    except BackendError as exc:
        if control.cancelled.is_set():
            run.interrupt()
        else:
            run.stop(RunStatus.ERROR, f"the sandbox could not start: {exc}")
    except KeyboardInterrupt:
        run.interrupt()
    except Exception as exc:  # a bug or an unforeseen OSError: still a transcript, and the others go on
        run.stop(RunStatus.ERROR, f"sandrun failed while running this recipe: {type(exc).__name__}: {exc}")
    finally:
        for live in starting:
            control.detach(live)
            ahead.retire(live) if ahead else live.close()
    run.finish_remaining()
    return Transcript(
        recipe=recipe,
        backend=backend.name,
        isolation=backend.isolation,
        status=run.status(),
        results=tuple(run.results),
        started_at=started_at,
        duration=time.monotonic() - started,
        tool_version=__version__,
        python_version=session.python_version if session else None,
        reason=run.stop_reason,
        limits={
            "cell_timeout": options.cell_timeout,
            "output_limit": options.output_limit,
            "grace": options.grace,
            "network": sandbox.network,
            **({"resources": options.limits.as_dict()} if backend.driver_limits(sandbox) else {}),
        },
    )


def sandbox_options(recipe: Recipe, options: RunOptions) -> SandboxOptions:
    """What the sandbox for `recipe` must look like: the command line overrides the recipe."""
    base = Path(recipe.path).parent
    return SandboxOptions(
        env={**recipe.env, **options.env},
        python=options.python or recipe.python,
        workdir=options.workdir,
        files={name: base / name for name in recipe.files},
        files_from=base,
        network=options.network if options.network is not None else bool(recipe.network),
        limits=options.limits,
    )


def prepare_packages(
    recipe: Recipe, backend: Backend, sandbox: SandboxOptions, cache_dir: Path | None
) -> SandboxOptions:
    """The sandbox options once the recipe's `packages` are taken care of: a backend that builds images gets
    the list; for the others a cached virtual environment is built (inside a sandbox of its own for the
    `local` backend, on the host for `process`) and used inside."""
    if not recipe.packages:
        return sandbox
    base = Path(recipe.path).parent
    packages = tuple(str((base / p).resolve()) if (base / p).exists() else p for p in recipe.packages)
    if backend.installs_packages:
        return replace(sandbox, packages=packages)
    if cache_dir is None:
        raise BackendError("this recipe needs packages, but no cache directory was given to build them in")
    from sandrun.environments import EnvironmentSpec, ensure_environment  # only recipes with packages

    spec = EnvironmentSpec(packages=packages, python=sandbox.python or backend.default_python())
    from sandrun.backends.local import LocalBackend  # the build's own sandbox; the process backend has none

    build_sandbox = backend if isinstance(backend, LocalBackend) else None
    try:
        return replace(sandbox, python=ensure_environment(spec, cache_dir, sandbox=build_sandbox))
    except BackendError as exc:
        raise BackendError(f"setting up the recipe's packages failed: {exc}") from None


class _Run:
    """The state of one recipe run: results so far, and why it stopped early if it did."""

    def __init__(
        self, recipe: Recipe, options: RunOptions, listener: RunListener, control: RunControl
    ) -> None:
        self.recipe = recipe
        self.options = options
        self.listener = listener
        self.control = control
        self.results: list[CellResult] = []
        self.stop_reason: str | None = None
        self.stop_status: RunStatus | None = None
        self.current: Cell | None = None
        self.current_outputs = OutputRuns()
        self.current_started = 0.0

    def cells(self, session: Session) -> None:
        """Run, skip or record every cell in order until the run stops."""
        runnable = [c for c in self.recipe.cells if c.kind is CellKind.CODE and not c.skip]
        sent: deque[Submitted] = deque()
        """Cells sent ahead: the ones after `runnable[position]`, in order."""
        position = 0
        for cell in self.recipe.cells:
            if self.stop_reason:
                break
            if self.control.cancelled.is_set():
                raise KeyboardInterrupt
            if cell.kind is not CellKind.CODE:
                self.record(CellResult(cell, CellStatus.SKIPPED, reason=f"{cell.kind.value} cell, not code"))
            elif cell.skip:
                self.record(CellResult(cell, CellStatus.SKIPPED, reason=cell.why_skipped))
            else:
                submitted = sent.popleft() if sent else self.submit(session, cell)
                self.send_ahead(session, runnable, position, submitted, sent)
                position += 1
                result = self.run_cell(session, cell, submitted)
                if self.control.cancelled.is_set():
                    raise KeyboardInterrupt  # stopped from another thread: `interrupt` records this cell
                self.current = None
                self.record(result)
                self.after(session, cell)

    def submit(self, session: Session, cell: Cell) -> Submitted:
        """Send a code cell to the interpreter."""
        return session.submit(cell_request(cell, self.recipe, self.options), self.options.grace)

    def send_ahead(
        self,
        session: Session,
        runnable: list[Cell],
        position: int,
        current: Submitted,
        sent: deque[Submitted],
    ) -> None:
        """Send up to `AHEAD` of the cells after `runnable[position]` while it runs, so that the interpreter
        never waits for the host between cells.

        A cell is sent ahead only where the interpreter can tell alone whether it must run: under
        --keep-going it always runs; otherwise it follows a cell that expects nothing (no texts, no error,
        no `#>` comments: its result is as good as its status), and the interpreter runs it only if that
        cell ended `ok` or was skipped by its `skip_if` (`after`)."""
        while len(sent) < AHEAD and position + len(sent) + 1 < len(runnable):
            previous, last = runnable[position + len(sent)], (sent[-1] if sent else current)
            keep_going = self.options.keep_going
            if not keep_going and (previous.expect.error or previous.expect.texts() or has_arrows(previous)):
                return
            cell = runnable[position + len(sent) + 1]
            request = cell_request(cell, self.recipe, self.options)
            ahead = session.submit_ahead(request, self.options.grace, None if keep_going else last.id)
            if ahead is None:
                return
            sent.append(ahead)

    def run_cell(self, session: Session, cell: Cell, submitted: Submitted) -> CellResult:
        """Wait for a code cell sent to the interpreter and judge what came back."""
        self.current, self.current_outputs, self.current_started = cell, OutputRuns(), time.monotonic()
        self.listener.cell_started(cell)

        def on_output(chunk: OutputChunk) -> None:
            self.current_outputs.add(chunk)
            self.listener.cell_output(cell, chunk)

        return result_of(cell, session.collect(submitted, on_output))

    def after(self, session: Session, cell: Cell) -> None:
        """Decide whether the run goes on after a cell: a dead sandbox or a failure stops it."""
        last = self.results[-1]
        if session.dead_reason:
            self.stop(
                RunStatus.ERROR,
                f"the sandbox stopped during {cell.label} ({cell.location}): {session.dead_reason}",
            )
        elif last.status in UNEXPECTED and not self.options.keep_going:
            self.stop(
                RunStatus.FAILED,
                f"{cell.label} ({cell.location}) {last.status.value}; "
                "later cells were not run (use --keep-going to run every cell)",
            )

    def record(self, result: CellResult) -> None:
        """Keep a result and tell the listener."""
        self.results.append(result)
        self.listener.cell_finished(result)

    def stop(self, status: RunStatus, reason: str) -> None:
        """Stop the run (the first reason wins)."""
        if self.stop_reason is None:
            self.stop_status, self.stop_reason = status, reason

    def interrupt(self) -> None:
        """Ctrl-C: the running cell is recorded as interrupted with the output it had produced."""
        self.stop(RunStatus.INTERRUPTED, "interrupted by the user (Ctrl-C or SIGTERM)")
        if self.current is not None:
            error = CellError("KeyboardInterrupt", "interrupted by the user; the sandbox was stopped")
            self.record(
                CellResult(
                    self.current,
                    CellStatus.ERROR,
                    tuple(self.current_outputs.chunks()),
                    error=error,
                    duration=time.monotonic() - self.current_started,
                    reason="interrupted",
                )
            )
            self.current = None

    def finish_remaining(self) -> None:
        """Every cell without a result is recorded as not run, with the reason the run stopped."""
        for cell in self.recipe.cells[len(self.results) :]:
            self.record(CellResult(cell, CellStatus.NOT_RUN, reason=self.stop_reason or "not run"))

    def status(self) -> RunStatus:
        """The run's overall status from how it stopped and how its cells ended."""
        if self.stop_status in (RunStatus.INTERRUPTED, RunStatus.ERROR):
            return self.stop_status
        statuses = {r.status for r in self.results}
        if CellStatus.ERROR in statuses:
            return RunStatus.ERROR
        if statuses & {CellStatus.FAILED, CellStatus.TIMEOUT}:
            return RunStatus.FAILED
        return RunStatus.PASSED


def has_arrows(cell: Cell) -> bool:
    """Whether the cell's code may have `#>` comments, the output of the statement above them (then the
    driver records what each statement printed, and `sandrun.arrows` checks it)."""
    return "#>" in cell.source


def cell_request(cell: Cell, recipe: Recipe, options: RunOptions) -> CellRequest:
    """What the interpreter is sent to run a code cell of `recipe`: its code where the file has it, its
    timeout (the most specific setting wins), and what its expectations need of the run."""
    return CellRequest(
        cell.source,
        cell.path,
        cell.line,
        cell.timeout or recipe.timeout or options.cell_timeout,
        by_statement=has_arrows(cell),
        interactive=cell.expect.repl is not None,  # a `>>>` example runs as a console runs it
        skip_if=cell.skip_if,
    )


def result_of(cell: Cell, outcome: CellOutcome) -> CellResult:
    """Turn what the driver reported into a judged `CellResult`."""
    status, reason, diff, mismatch, mismatch_line = CellStatus.ERROR, None, None, None, None
    message = outcome.error.message if outcome.error else ""
    printed = None if outcome.printed is None else tuple(outcome.printed)
    if outcome.status == "timeout":
        status, reason = CellStatus.TIMEOUT, message or "timed out"
    elif outcome.status == "crashed":
        reason = f"the sandbox died: {message}"
    elif outcome.status == "skipped" and cell.skip_if is not None:
        status = CellStatus.SKIPPED
        reason = f"`:skipif: {cell.skip_if.text}` (line {cell.skip_if.line}) is true in the sandbox"
    elif outcome.status == "skipped":  # sent ahead of a cell that failed; the run stops there before this
        status, reason = CellStatus.NOT_RUN, "not run: an earlier cell failed"
    else:
        outputs = outcome.outputs
        actual = {
            "stdout": stream_text(outputs, "stdout"),
            "stderr": stream_text(outputs, "stderr"),
            "value": outcome.value,
        }
        verdict = judge(cell.expect, outcome.error, outcome.error_types, actual)
        if verdict.status is CellStatus.PASSED and printed is not None:
            from sandrun.arrows import judge_arrows  # only cells with `#>` comments pay for it

            verdict = judge_arrows(cell, printed)
        status, reason, diff, mismatch = verdict.status, verdict.reason, verdict.diff, verdict.mismatch
        mismatch_line = verdict.mismatch_line
    return CellResult(
        cell=cell,
        status=status,
        outputs=tuple(outcome.outputs),
        value=outcome.value,
        error=outcome.error,
        duration=outcome.duration,
        reason=reason,
        diff=diff,
        mismatch=mismatch,
        mismatch_line=mismatch_line,
        peak_memory=outcome.peak_memory,
        printed=printed,
    )


def run_many(
    runs: Sequence[tuple[Recipe, Backend]],
    options: RunOptions,
    jobs: int,
    listener_for: Callable[[Recipe], RunListener],
    control: RunControl,
    finished: Callable[[Transcript], None] | None = None,
    early: EarlySandbox | None = None,
) -> list[Transcript]:
    """Run recipes (each on its backend) `jobs` at a time, each in its own sandbox; transcripts come back in
    the order of `runs`.

    One recipe's failure or crash does not stop the others; `control.cancel()` stops them all, and each
    still returns its (interrupted) transcript. `finished` is called (from a worker thread) as each ends.
    A sandbox started `early` goes to the first recipe it fits, or is torn down.
    """
    from concurrent.futures import ThreadPoolExecutor, wait

    from sandrun.prestart import Prestarter

    ahead = Prestarter(runs, options, max(2, jobs), control)

    def one(index: int, recipe: Recipe, backend: Backend) -> Transcript:
        transcript = run_recipe(recipe, backend, options, listener_for(recipe), control, ahead, index)
        if finished is not None:
            finished(transcript)
        return transcript

    try:
        ahead.adopt(early)
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sandrun-run") as pool:
            futures = [pool.submit(one, i, recipe, backend) for i, (recipe, backend) in enumerate(runs)]
            try:
                while not all(future.done() for future in futures):
                    wait(futures, timeout=0.2)  # short waits keep the main thread responsive to Ctrl-C
            except KeyboardInterrupt:
                control.cancel()
            return [future.result() for future in futures]
    finally:
        ahead.close()  # sandboxes started ahead for recipes that never ran

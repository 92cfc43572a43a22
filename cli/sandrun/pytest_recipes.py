"""Recipes as pytest items: one `RecipeFile` per recipe, one `CellItem` per code cell.

A recipe's cells share one interpreter, started in one sandbox when its first item runs (pytest's setup of
the file) and stopped after its last (teardown). Cells run in order; after a cell fails (or the sandbox
dies) the later cells are skipped, with the reason, as `sandrun run` leaves them not run. Selecting cells
(`-k`, `-m`, a node id) still runs the earlier cells of the recipe first, unreported, because the selected
ones depend on the state they leave: if one of those fails, the selected cell is skipped and says which.
A cell with `skip` in its recipe is a pytest skip. A failure shows what the command shows: the traceback,
`failed in ...: reason`, and the unified diff of a mismatch, under the cell's file:line.
`--sandrun-update` runs every cell of each collected recipe and rewrites its expected outputs at the end,
as `sandrun run --update` does; the items still report what ran, so run again to see them pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sandrun import __version__
from sandrun.backends import backend_name, get_backend
from sandrun.backends.base import Backend
from sandrun.defaults import DEFAULT_CELL_TIMEOUT
from sandrun.durations import format_duration
from sandrun.environments import default_cache_dir
from sandrun.errors import BackendError, SandrunError
from sandrun.model import Cell, CellKind, CellResult, CellStatus, Recipe, RunStatus, Transcript
from sandrun.readers import load_recipe
from sandrun.runner import (
    UNEXPECTED,
    RunOptions,
    cell_request,
    prepare_packages,
    result_of,
    sandbox_options,
)
from sandrun.session import Session

UPDATES = pytest.StashKey[list[str]]()
"""What `--sandrun-update` wrote (or refused), for the terminal summary."""


class CellFailed(Exception):
    """A cell did not do what its recipe expects (or timed out, or its sandbox failed)."""

    def __init__(self, result: CellResult) -> None:
        super().__init__(result.reason or result.status.value)
        self.result = result


class RecipeFile(pytest.File):
    """A recipe: collected into its code cells; owns the recipe's sandbox while its items run."""

    recipe: Recipe
    run: RecipeRun | None = None
    skipped: str | None = None
    """Why the project skips this recipe (pyproject.toml:LINE and the reason), if it does."""

    def collect(self) -> Iterator[pytest.Item]:
        """One item per code cell, in order, each marked `sandrun` (and with its identifier-like tags); one
        skipped item, the recipe unread, when the project skips it."""
        from sandrun.pytest_plugin import NAMED, PROJECT

        project = self.config.stash.get(PROJECT, None)
        shown = shown_path(self.path, self.config)
        if project is not None and self.path.resolve() not in self.config.stash.get(NAMED, set()):
            skip = project.skip_for(self.path)
            if skip is not None:
                self.skipped = skip.why
                yield SkippedRecipe.from_parent(self, name="skipped")
                return
        try:
            given = self.config.getoption("sandrun_timeout") is not None
            self.recipe = project.load(shown, cli_timeout=given) if project else load_recipe(shown)
            backend_name(self.config.getoption("sandrun_backend"), self.recipe.backend, self.recipe.path)
        except SandrunError as exc:
            raise self.CollectError(str(exc)) from None
        for cell in self.recipe.cells:
            if cell.kind is not CellKind.CODE:
                continue
            item = CellItem.from_parent(self, name=item_name(cell), cell=cell)
            item.add_marker("sandrun")
            for tag in cell.tags:
                if tag.isidentifier():
                    register_marker(self.config, tag)
                    item.add_marker(tag)
            yield item

    def setup(self) -> None:
        """Get ready to run the recipe; its sandbox starts with the first cell that runs."""
        if self.skipped:
            return
        self.run = RecipeRun(self.recipe, self.config)

    def teardown(self) -> None:
        """Stop the sandbox; with `--sandrun-update`, run what is left and rewrite the recipe."""
        run, self.run = self.run, None
        if run is None:
            return
        try:
            if self.config.getoption("sandrun_update"):
                run.catch_up(len(self.recipe.cells))
                self.config.stash.setdefault(UPDATES, []).extend(run.update())
        finally:
            run.close()


class CellItem(pytest.Item):
    """One code cell of a recipe."""

    def __init__(self, *, cell: Cell, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell

    def runtest(self) -> None:
        """Run the cell (after the earlier ones, if they have not run) and judge it."""
        parent = self.parent
        assert isinstance(parent, RecipeFile) and parent.run is not None
        result = parent.run.result_for(self.cell)
        if result.status in (CellStatus.SKIPPED, CellStatus.NOT_RUN):  # reported at the cell's file:line
            raise pytest.skip.Exception(result.reason or "skipped", _use_item_location=True)
        if result.status is not CellStatus.PASSED:
            raise CellFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        """What `sandrun run` prints for a failed cell: traceback, verdict and reason, diff."""
        if not isinstance(excinfo.value, CellFailed):
            return str(super().repr_failure(excinfo, style=style))
        return describe_failure(excinfo.value.result)

    def reportinfo(self) -> tuple[Path, int, str]:
        """The cell's file and line, for pytest's headers."""
        return self.path, self.cell.line - 1, f"{self.cell.location}: {self.cell.label}"


class SkippedRecipe(pytest.Item):
    """A recipe the project skips: one skipped test at the top of the file, with the reason, never read."""

    def runtest(self) -> None:
        """Skip, at the recipe's first line."""
        parent = self.parent
        assert isinstance(parent, RecipeFile)
        raise pytest.skip.Exception(parent.skipped or "skipped", _use_item_location=True)

    def reportinfo(self) -> tuple[Path, int, str]:
        """The recipe file, line 1."""
        return self.path, 0, f"{self.path.name}: skipped"


class RecipeRun:
    """One recipe's cells in one sandbox, each run at most once, in order."""

    def __init__(self, recipe: Recipe, config: pytest.Config) -> None:
        self.recipe = recipe
        self.update_mode = bool(config.getoption("sandrun_update"))
        name = backend_name(config.getoption("sandrun_backend"), recipe.backend, recipe.path)
        self.backend: Backend = get_backend(name, os.environ)
        timeout = config.getoption("sandrun_timeout")
        self.options = RunOptions(
            cell_timeout=timeout or DEFAULT_CELL_TIMEOUT, cache_dir=default_cache_dir(os.environ)
        )
        self.session: Session | None = None
        self.results: dict[int, CellResult] = {}
        self.stopped: str | None = None
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.started = time.monotonic()

    def result_for(self, cell: Cell) -> CellResult:
        """The cell's result: the cells before it run first if they have not."""
        self.catch_up(cell.index)
        if cell.index not in self.results:
            self.results[cell.index] = self._run(cell)
        return self.results[cell.index]

    def catch_up(self, end: int) -> None:
        """Run every cell before index `end` that has not run."""
        for earlier in self.recipe.cells[:end]:
            if earlier.index not in self.results:
                self.results[earlier.index] = self._run(earlier)

    def _run(self, cell: Cell) -> CellResult:
        if cell.kind is not CellKind.CODE:
            return CellResult(cell, CellStatus.SKIPPED, reason=f"{cell.kind.value} cell, not code")
        if cell.skip:
            return CellResult(cell, CellStatus.SKIPPED, reason=cell.why_skipped)
        if self.stopped:
            return CellResult(cell, CellStatus.NOT_RUN, reason=self.stopped)
        try:
            session = self._session()
        except BackendError as exc:
            self.stopped = f"not run: the sandbox could not start: {exc}"
            return CellResult(cell, CellStatus.ERROR, reason=f"the sandbox could not start: {exc}")
        outcome = session.run(cell_request(cell, self.recipe, self.options), self.options.grace)
        result = result_of(cell, outcome)
        if session.dead_reason:
            self.stopped = f"not run: the sandbox stopped during {cell.label} ({cell.location})"
        elif result.status in UNEXPECTED and not self.update_mode:
            self.stopped = f"not run: {cell.label} ({cell.location}) {result.status.value} before it"
        return result

    def _session(self) -> Session:
        if self.session is None:
            sandbox = sandbox_options(self.recipe, self.options)
            sandbox = prepare_packages(self.recipe, self.backend, sandbox, self.options.cache_dir)
            self.session = Session.start(self.backend, sandbox, self.options.output_limit)
        return self.session

    def update(self) -> list[str]:
        """Rewrite the recipe from the results (every cell has one); lines saying what changed."""
        from sandrun.update import update_recipe

        results = tuple(self.results[cell.index] for cell in self.recipe.cells)
        statuses = {r.status for r in results}
        status = RunStatus.ERROR if CellStatus.ERROR in statuses else RunStatus.PASSED
        transcript = Transcript(
            recipe=self.recipe,
            backend=self.backend.name,
            isolation=self.backend.isolation,
            status=status,
            results=results,
            started_at=self.started_at,
            duration=time.monotonic() - self.started,
            tool_version=__version__,
        )
        try:
            done = update_recipe(self.recipe.path, transcript)
        except (SandrunError, OSError) as exc:
            return [f"{self.recipe.path}: not updated: {exc}"]
        lines = [f"{edit.location}: {edit.label}: updated the expected {edit.what}" for edit in done.edits]
        return lines + [f"{self.recipe.path}: {note}" for note in done.notes]

    def close(self) -> None:
        """Stop the sandbox."""
        if self.session is not None:
            self.session.close()
            self.session = None


def register_marker(config: pytest.Config, tag: str) -> None:
    """Make a cell tag a known marker (`-m slow`), so that `--strict-markers` accepts it."""
    if not any(line.split(":")[0].strip() == tag for line in config.getini("markers")):
        config.addinivalue_line("markers", f"{tag}: cells tagged {tag!r} in sandrun recipes")


def item_name(cell: Cell) -> str:
    """`cell_3`, or `cell_3[load data]` for a named cell: `-k cell_3` and `-k "load"` select it (a node
    id never holds `::`, which would split it)."""
    name = f"cell_{cell.index + 1}"
    return f"{name}[{cell.name.replace('::', ': ')}]" if cell.name else name


def shown_path(path: Path, config: pytest.Config) -> str:
    """The recipe's path as messages show it: relative to where pytest was started, when it is below."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def describe_failure(result: CellResult) -> str:
    """A failed cell as `sandrun run` prints it, under a first line that says where and why (pytest's
    short summary shows that line)."""
    verdict = f"{result.status.value} in {format_duration(result.duration)}"
    lines = [
        f"{result.cell.location}: {result.cell.label} {result.status.value}: {result.reason or ''}".rstrip()
    ]
    if result.value is not None:
        lines.append(f"=> {result.value}")
    if result.error is not None:
        lines.append(result.error.traceback.rstrip() or f"{result.error.type}: {result.error.message}")
    lines.append(verdict)
    if result.diff:
        lines.append(result.diff.rstrip("\n"))
    return "\n".join(lines)

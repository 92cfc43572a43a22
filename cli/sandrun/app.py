"""The command line: the only module that imports typer, reads the environment, prints and picks exit codes.

Exit codes: 0 every cell did what was expected; 1 a cell failed; 2 the recipe or the command line is wrong;
3 the sandbox could not start or died, or a report could not be written; 130 interrupted.
"""

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sandrun import __version__
from sandrun.backends import BACKENDS, DEFAULT_BACKEND
from sandrun.defaults import DEFAULT_CELL_TIMEOUT

# No `from __future__ import annotations` here: typer would evaluate every string annotation at each start.
if TYPE_CHECKING:  # the rest is imported where it is used: `--version` and `--help` need none of it
    from sandrun.backends.base import Backend
    from sandrun.console import Console
    from sandrun.delivery import SignalsDeferred
    from sandrun.model import Cell, Recipe, Transcript
    from sandrun.runner import RunOptions

EXIT_CODES = {"passed": 0, "skipped": 0, "failed": 1, "error": 3, "interrupted": 130}
"""Exit code by `RunStatus` value."""
SEVERITY = (0, 1, 2, 3, 130)
"""Exit codes from least to most severe: several recipes exit with the most severe one."""

app = typer.Typer(
    name="sandrun",
    help="Run Python recipes cell by cell in a sandbox and get back a transcript you can trust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn sandrun errors into one clear message and their exit code; no traceback unless SANDRUN_DEBUG=1."""
    from sandrun.errors import SandrunError

    try:
        yield
    except SandrunError as exc:
        fail(str(exc), exc.exit_code)
    except typer.Exit:
        raise
    except BrokenPipeError:
        from sandrun.delivery import silence_stdout, stdout_is_closed

        if not stdout_is_closed():
            raise
        silence_stdout()  # `sandrun cells x | head -1`: the reader has what it wanted; stop, quietly
        raise typer.Exit(0) from None
    except Exception as exc:
        if os.environ.get("SANDRUN_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        fail(f"internal error: {type(exc).__name__}: {exc} (set SANDRUN_DEBUG=1 to see the traceback)", 1)


def fail(message: str, code: int) -> NoReturn:
    """Print `sandrun: error: message` on stderr and exit with `code`."""
    from sandrun.text import for_terminal

    typer.echo(f"sandrun: error: {for_terminal(message)}", err=True)
    raise typer.Exit(code)


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """SIGTERM is treated like Ctrl-C: stop the sandbox, keep the transcript."""
    raise KeyboardInterrupt


@app.command()
def run(
    recipes: Annotated[
        list[str] | None,
        typer.Argument(
            help="Recipe files (.yaml, .yml, percent-format .py, .md), directories to search, or globs "
            "(none: pyproject.toml's [tool.sandrun] paths)."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help=f"Where cells run: {', '.join(BACKENDS)} (default: the recipe's, else {DEFAULT_BACKEND}).",
            envvar="SANDRUN_BACKEND",
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="What to print on stdout: text (nothing; progress on stderr), json, md, junit, ipynb, html.",
        ),
    ] = "text",
    report: Annotated[
        list[Path] | None,
        typer.Option(
            help="Write the transcript to this file (.json, .md, .ipynb, .html; .xml: JUnit); repeatable."
        ),
    ] = None,
    cell_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds per cell, unless the cell or the recipe sets its own "
            f"(default: pyproject.toml's [tool.sandrun] timeout, else {DEFAULT_CELL_TIMEOUT:g}).",
            min=0.001,
        ),
    ] = None,
    keep_going: Annotated[bool, typer.Option(help="Run every cell even after one fails.")] = False,
    env: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE set inside the sandbox; repeatable.")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Working directory for the cells (default: a fresh temporary one).")
    ] = None,
    python: Annotated[str | None, typer.Option(help="Interpreter to run inside the sandbox.")] = None,
    network: Annotated[
        bool | None, typer.Option("--network/--no-network", help="Let cells use the network (default: off).")
    ] = None,
    cpu: Annotated[float | None, typer.Option(help="CPU cores to reserve (Modal).", min=0.125)] = None,
    memory: Annotated[
        str, typer.Option(help="Address space per process, e.g. 512M, 4G; 0 = no limit.")
    ] = "4G",
    cpu_time: Annotated[int, typer.Option(help="CPU seconds per process; 0 = no limit.", min=0)] = 900,
    max_procs: Annotated[int, typer.Option(help="Processes and threads at once; 0 = no limit.", min=0)] = 256,
    output_limit: Annotated[
        str, typer.Option(help="Output kept per stream per cell, e.g. 1M; the rest is dropped with a marker.")
    ] = "1M",
    disk: Annotated[
        str, typer.Option(help="Size of /tmp and of the default work directory; 0 = no limit.")
    ] = "1G",
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="Recipes run at once, each in its own sandbox (default: CPUs).", min=1
        ),
    ] = None,
    check_outputs: Annotated[bool, typer.Option(help="Notebooks: check their stored outputs.")] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Rewrite the expected outputs in the recipes from what ran (implies --keep-going).",
        ),
    ] = False,
    annotations: Annotated[
        str | None,
        typer.Option(
            help="Print CI annotations for failed cells: github (default when GITHUB_ACTIONS=true), none."
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only failures and the summary on stderr.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail (exit 1) when a block that looks like Python was found but cannot be run "
            "(an unknown language variant, a directive sandrun does not run).",
        ),
    ] = False,
) -> None:
    """Run recipes, check every cell, and report.

    Exit code: 0 passed, 1 a cell failed, 2 bad recipe or options, 3 sandbox error, 130 interrupted.
    """
    with reported_errors():
        import math
        import time

        from sandrun.backends import backend_name, get_backend
        from sandrun.backends.base import Limits, isolates_nothing
        from sandrun.console import Console, overall
        from sandrun.delivery import SignalsDeferred
        from sandrun.discover import find_recipes
        from sandrun.environments import default_cache_dir
        from sandrun.errors import UsageError
        from sandrun.inputs import choose_annotations, format_report_path, load_all, parse_env, parse_size
        from sandrun.model import MAX_TIMEOUT
        from sandrun.reports import FORMATS
        from sandrun.runner import RunOptions

        if output_format != "text" and output_format not in FORMATS:
            raise UsageError(f"--format {output_format!r} is not one of: text, {', '.join(FORMATS)}")
        report_formats = [(path, format_report_path(path)) for path in report or []]
        if cell_timeout is not None and (not math.isfinite(cell_timeout) or cell_timeout > MAX_TIMEOUT):
            raise UsageError(
                f"--cell-timeout {cell_timeout:g} is not a number of seconds up to {MAX_TIMEOUT:g}"
            )
        for path, _ in report_formats:
            if not path.parent.is_dir():
                raise UsageError(f"--report {path}: the directory {path.parent} does not exist")
        if workdir is not None and not workdir.is_dir():
            raise UsageError(f"--workdir {workdir} is not a directory")
        from sandrun.project import find_project

        project = find_project()
        named = {Path(name) for name in recipes or [] if Path(name).is_file()}  # the command line wins
        if not recipes:
            recipes = project.default_paths() if project else []
            if not recipes:
                raise UsageError(
                    "no recipes given",
                    hint="name them, or list them in pyproject.toml: "
                    '[tool.sandrun] paths = ["README.md", "docs/"]',
                )
        found = find_recipes(recipes)
        unmatched = (
            project.unmatched_overrides(found)
            if project and not named and recipes == project.default_paths()
            else []
        )
        skips = [skip for path in found if path not in named and project and (skip := project.skip_for(path))]
        skipped = {skip.path for skip in skips}
        loaded = load_all(
            [p for p in found if p not in skipped], check_outputs, project, cell_timeout is not None
        )
        console = Console(quiet)
        if not loaded:
            for skip in skips:
                console.say(str(skip), "yellow")
            console.say("sandrun: nothing to run: pyproject.toml skips every recipe found", "yellow")
            from sandrun.delivery import deliver
            from sandrun.text import for_terminal

            stdout_format = None if output_format == "text" else output_format
            problems = deliver([skip.transcript() for skip in skips], report_formats, stdout_format)
            for problem in problems:
                typer.echo(f"sandrun: error: {for_terminal(problem)}", err=True)
            raise typer.Exit(3 if problems else 0)
        options = RunOptions(
            cell_timeout=cell_timeout or DEFAULT_CELL_TIMEOUT,
            keep_going=keep_going or update,
            cache_dir=default_cache_dir(os.environ),
            env=parse_env(env or []),
            python=python,
            workdir=workdir,
            network=network,
            output_limit=max(1, parse_size(output_limit, "--output-limit")),
            limits=Limits(
                memory=parse_size(memory, "--memory") or None,
                cpu_time=cpu_time or None,
                max_procs=max_procs or None,
                disk=parse_size(disk, "--disk") or None,
                cpu=cpu,
            ),
        )
        for warning in [*unmatched, *(warning for recipe in loaded for warning in recipe.warnings)]:
            console.say(f"sandrun: warning: {warning}", "yellow")
        names = [backend_name(backend, recipe.backend, recipe.path) for recipe in loaded]
        backends = {name: get_backend(name, os.environ) for name in set(names)}
        chosen = [backends[name] for name in names]
        if any(isolates_nothing(b) for b in chosen):
            console.say(
                "sandrun: the process backend ISOLATES NOTHING: cells run with your permissions.", "yellow"
            )
        annotate = choose_annotations(annotations, os.environ)
        started = time.monotonic()
        default_jobs = 16 if any(b.name == "modal" for b in chosen) else os.cpu_count() or 1
        if workdir is not None and len(loaded) > 1:
            jobs = 1  # one work directory, shared: the recipes take turns in it
        runs = list(zip(loaded, chosen, strict=True))
        deferred = SignalsDeferred()
        try:
            transcripts = run_all(runs, options, console, jobs or default_jobs, deferred)
            for skip in skips:
                console.say(str(skip), "yellow")
            if len(transcripts) > 1 or skips:
                overall(console, transcripts, time.monotonic() - started, len(skips))
            from sandrun.delivery import deliver, write_stdout
            from sandrun.text import for_terminal

            if annotate:  # on stdout, unless stdout carries a transcript
                from sandrun.reports.annotations import github_annotations

                commands = "".join(command + "\n" for command in github_annotations(transcripts))
                write_stdout(commands) if output_format == "text" else sys.stderr.write(commands)
            stdout_format = None if output_format == "text" else output_format
            reported = transcripts + [skip.transcript() for skip in skips]  # reports list skips too
            problems = deliver(reported, report_formats, stdout_format)
            for problem in problems:
                typer.echo(f"sandrun: error: {for_terminal(problem)}", err=True)
            code = max((EXIT_CODES[t.status.value] for t in transcripts), key=SEVERITY.index)
            if strict and not_run_anywhere(transcripts, console):
                code = max(code, 1, key=SEVERITY.index)
            if update and not deferred.interrupted:
                code = update_all(transcripts, console)  # a mismatch written into the recipe counts as fixed
            if problems:
                code = max(code, 3, key=SEVERITY.index)
        finally:
            deferred.release()
        raise typer.Exit(130 if deferred.interrupted else code)


def not_run_anywhere(transcripts: "list[Transcript]", console: "Console") -> bool:
    """For `--strict`: say which blocks were found but cannot be run; whether there were any."""
    found = [r.cell for t in transcripts for r in t.results if r.cell.unsupported]
    for cell in found:
        console.say(f"sandrun: --strict: {cell.location}: found but not run: {cell.unsupported}", "red")
    return bool(found)


def update_all(transcripts: "list[Transcript]", console: "Console") -> int:
    """Rewrite each recipe's expected outputs from its run; print what changed; return the exit code.

    Exit 0 when every failure was an output mismatch now written into the recipe, else as the runs say.
    """
    from sandrun.atomic import why_not_written
    from sandrun.errors import SandrunError
    from sandrun.expect import diff
    from sandrun.model import CellStatus
    from sandrun.update import update_recipe  # only --update pays for the updater's imports

    fixed: set[tuple[str, int]] = set()
    unwritten = False
    for transcript in transcripts:
        try:
            result = update_recipe(transcript.recipe.path, transcript)
        except SandrunError as exc:
            console.say(f"{transcript.recipe.path}: not updated: {exc}", "red")
            continue
        except OSError as exc:  # a full or read-only disk: the recipe is as it was, the others go on
            why = why_not_written(exc)
            console.say(f"{transcript.recipe.path}: not updated: cannot write it: {why}", "red")
            unwritten = True
            continue
        for edit in result.edits:
            console.say(f"{edit.location}: {edit.label}: updated the expected {edit.what}", "green")
            for line in diff(edit.old, edit.new, edit.what).rstrip("\n").splitlines():
                console.say(f"    {line}")
            fixed.add((transcript.recipe.path, edit.cell))
        for note in result.notes:
            console.say(f"{transcript.recipe.path}: {note}", "yellow")
        if not result.edits:
            console.say(f"{transcript.recipe.path}: nothing to update")
    codes = [
        0 if r.status in (CellStatus.PASSED, CellStatus.SKIPPED) or (t.recipe.path, r.cell.index) in fixed
        else EXIT_CODES[t.status.value]
        for t in transcripts
        for r in t.results
    ]  # fmt: skip
    return max([*codes, 3 if unwritten else 0], key=SEVERITY.index)


def run_all(
    runs: "list[tuple[Recipe, Backend]]",
    options: "RunOptions",
    console: "Console",
    jobs: int,
    after: "SignalsDeferred",
) -> "list[Transcript]":
    """Run the recipes, `jobs` at a time; every recipe gets a transcript, also after Ctrl-C (or SIGTERM),
    which stops them all. One at a time, cell output streams live; several at once, a board shows progress.
    Once the cells are done, signals are held back by `after` (from here, with no gap in between)."""
    from sandrun.console import Board, RecipeProgress
    from sandrun.early import claim
    from sandrun.model import RunStatus
    from sandrun.runner import RunControl, run_many, run_recipe

    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    control = RunControl()
    try:
        if jobs > 1 and len(runs) > 1:
            board = Board(console, len(runs))

            def listener_for(recipe: "Recipe") -> "RecipeProgress":
                return board.listener_for(recipe)

            transcripts = run_many(runs, options, jobs, listener_for, control, board.finish, claim())
        else:
            from sandrun.prestart import Prestarter

            transcripts = []
            ahead = Prestarter(runs, options, 2, control)  # the next recipe's sandbox boots as one runs
            try:
                ahead.adopt(claim())  # the sandbox started before the command line was read, if any
                for index, (recipe, backend) in enumerate(runs):
                    transcripts.append(run_recipe(recipe, backend, options, console, control, ahead, index))
                    console.summary(transcripts[-1])
                    if transcripts[-1].status is RunStatus.INTERRUPTED:
                        control.cancel()  # the recipes after it are recorded as interrupted, not run
            finally:
                ahead.close()
    finally:
        after.hold(restore={signal.SIGTERM: previous})
    return transcripts


@app.command()
def report(
    transcript: Annotated[
        Path, typer.Argument(help="A transcript saved with --report x.json or --format json.")
    ],
    output_format: Annotated[str, typer.Option("--format", help="json, md, junit, ipynb or html.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
) -> None:
    """Re-render a saved JSON transcript (one, or a list of them) without running anything."""
    with reported_errors():
        from sandrun.atomic import why_not_written
        from sandrun.delivery import write_one, write_stdout
        from sandrun.errors import UsageError
        from sandrun.inputs import load_transcripts
        from sandrun.reports import FORMATS, render_all

        if output_format not in FORMATS:
            raise UsageError(f"--format {output_format!r} is not one of: {', '.join(FORMATS)}")
        transcripts = load_transcripts(transcript)
        if output is None:
            write_stdout(render_all(transcripts, output_format))
        else:
            try:
                write_one(output, transcripts, FORMATS[output_format])
            except OSError as exc:
                fail(f"cannot write {output}: {why_not_written(exc)}", 3)


modal_app = typer.Typer(help="Manage the Modal sandboxes sandrun creates.", no_args_is_help=True)
app.add_typer(modal_app, name="modal")


@modal_app.command("cleanup")
def modal_cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list them.")] = False,
) -> None:
    """Terminate the sandboxes sandrun left running on Modal (e.g. after a kill -9)."""
    with reported_errors():
        from sandrun.backends.modal_backend import cleanup

        found = cleanup(os.environ, terminate=not dry_run)
        verb = "found" if dry_run else "terminated"
        for sandbox_id in found:
            typer.echo(f"{verb} {sandbox_id}")
        typer.echo(f"{len(found)} sandbox{'es' if len(found) != 1 else ''} {verb}", err=True)


@app.command()
def backends() -> None:
    """List the backends: available here or not (and why), what they isolate, versions."""
    with reported_errors():
        from sandrun.backends import get_backend

        for name in BACKENDS:
            backend = get_backend(name, os.environ)
            reason = backend.unavailable_reason()
            versions = ", ".join(f"{k} {v}" for k, v in backend.versions().items())
            default = " (default)" if name == DEFAULT_BACKEND else ""
            typer.echo(f"{name}{default}: {'available' if reason is None else 'NOT available'}")
            typer.echo(f"  isolation: {backend.isolation}")
            if versions:
                typer.echo(f"  versions: {versions}")
            if reason is not None:
                typer.echo("  why not: " + reason.replace("\n", "\n  "))


@app.command()
def cells(recipe: Annotated[Path, typer.Argument(help="A recipe file.")]) -> None:
    """Show how a recipe is split into cells: index, name, kind and file:line."""
    with reported_errors():
        from sandrun.project import find_project
        from sandrun.readers import load_recipe
        from sandrun.text import for_terminal

        project = find_project()  # read as `sandrun run` reads it: the project's match mode, say
        loaded = project.load(recipe) if project else load_recipe(recipe)
        if project and (skip := project.skip_for(recipe)):
            typer.echo(for_terminal(f"note: `sandrun run` skips it unless it is named: {skip.why}"), err=True)
        for warning in loaded.warnings:
            typer.echo(for_terminal(f"warning: {warning}"), err=True)
        for cell in loaded.cells:
            flags = _cell_flags(cell)
            line = f"{cell.index + 1:>3}  {cell.kind.value:<8}  {cell.location:<32}  {cell.label}{flags}"
            typer.echo(for_terminal(line))


def _cell_flags(cell: "Cell") -> str:
    """What `sandrun cells` says after a cell that may not run: why, or under which condition."""
    if cell.unsupported:
        return f" (not run: {cell.unsupported})"
    if cell.skip:
        return f" (skip: {cell.skip_reason})" if cell.skip_reason else " (skip)"
    if cell.skip_if is not None and cell.skip_if.described:
        return f" (skipped if {cell.skip_if.described})"
    return f" (skipped if `{cell.skip_if.text}` is true)" if cell.skip_if else ""


def version_callback(value: bool) -> None:
    """`--version`: print the version and stop."""
    if value:
        typer.echo(f"sandrun {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Run Python recipes cell by cell in a sandbox and get back a transcript you can trust."""


def main() -> None:
    """Console-script entry point."""
    app()

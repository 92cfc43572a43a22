"""`sandrun.run` and `sandrun.load`: the command's behaviour, called from Python.

`run` takes the options of `sandrun run` as keyword arguments (sizes as bytes or as the command's `512M`,
`4G` strings) and returns the `Transcript`; write reports from it with `sandrun.reports`
(`write_report(path, render_all([transcript], "md"))`). Bad input raises a `SandrunError` (`RecipeError`
with file:line, `UsageError` for a bad option); a cell that fails, or a sandbox that dies, is recorded in the
transcript, never raised, exactly as the command records it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sandrun.backends import backend_name, get_backend
from sandrun.backends.base import Limits
from sandrun.defaults import DEFAULT_CELL_TIMEOUT
from sandrun.model import Recipe, Transcript
from sandrun.runner import RunListener, RunOptions, run_recipe
from sandrun.session import DEFAULT_GRACE

if TYPE_CHECKING:
    from sandrun.project import Project

Size = int | str
"""A size in bytes, or as the command line writes it: `512M`, `4G`, `1.5G`; 0 means no limit."""


ProjectChoice = bool | str | os.PathLike[str]
"""Whether a pyproject.toml's `[tool.sandrun]` defaults apply: False (the default) no; True the one
`sandrun run` would use (the nearest, looking up from the current directory); or a pyproject.toml (or
its directory)."""


def load(path: str | os.PathLike[str], *, project: ProjectChoice = False) -> Recipe:
    """Read a recipe file (`.yaml`/`.yml`, percent-format `.py`, `.md`, `.rst`, `.ipynb`) as `sandrun run`
    reads it; with `project`, the project's defaults are folded into it (its timeout as the recipe's).

    Raises `RecipeError` (with the file and line) for anything wrong in it or in the project's table."""
    return _load(path, project, cli_timeout=False)


def _load(path: str | os.PathLike[str], project: ProjectChoice, cli_timeout: bool) -> Recipe:
    from sandrun.readers import load_recipe

    chosen = _project(project)
    return chosen.load(os.fspath(path), cli_timeout=cli_timeout) if chosen else load_recipe(os.fspath(path))


def _project(project: ProjectChoice) -> Project | None:
    """The project `project` chooses (see `ProjectChoice`); a named file without `[tool.sandrun]` is a
    `UsageError`."""
    from sandrun.project import find_project, read_project

    if project is False:
        return None
    if project is True:
        return find_project()
    named = Path(project)
    found = read_project(named / "pyproject.toml" if named.is_dir() else named)
    if found is None:
        from sandrun.errors import UsageError

        raise UsageError(f"{os.fspath(project)} has no [tool.sandrun] table")
    return found


def run(
    recipe: str | os.PathLike[str] | Recipe,
    *,
    backend: str | None = None,
    cell_timeout: float | None = None,
    keep_going: bool = False,
    env: Mapping[str, str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    python: str | None = None,
    network: bool | None = None,
    memory: Size = "4G",
    cpu_time: int = 900,
    max_procs: int = 256,
    disk: Size = "1G",
    cpu: float | None = None,
    output_limit: Size = "1M",
    grace: float = DEFAULT_GRACE,
    cache_dir: str | os.PathLike[str] | None = None,
    listener: RunListener | None = None,
    project: ProjectChoice = False,
) -> Transcript:
    """Run every cell of a recipe (a path, or a `Recipe` from `load`) in one sandbox; the transcript.

    `backend` None means the recipe's own `backend:`, else `local`, as on the command line; every other
    option means what the `sandrun run` option of the same name means (`cache_dir` defaults to where the
    command keeps environments for `packages:`). `listener` receives progress (a `runner.RunListener`).
    `project` (for a path; a `Recipe` runs as loaded): a pyproject.toml's `[tool.sandrun]` defaults apply
    as on the command line, `cell_timeout` beating the project's timeout."""
    if isinstance(recipe, Recipe):
        loaded = recipe
    else:
        loaded = _load(recipe, project, cli_timeout=cell_timeout is not None)
    chosen = get_backend(backend_name(backend, loaded.backend, loaded.path), os.environ)
    if workdir is not None and not Path(workdir).is_dir():
        from sandrun.errors import UsageError

        raise UsageError(f"workdir {os.fspath(workdir)} is not a directory")
    options = RunOptions(
        cell_timeout=cell_timeout or DEFAULT_CELL_TIMEOUT,
        keep_going=keep_going,
        output_limit=max(1, size(output_limit, "output_limit")),
        grace=grace,
        env=dict(env or {}),
        python=python,
        cache_dir=Path(cache_dir) if cache_dir is not None else default_cache(),
        workdir=Path(workdir) if workdir is not None else None,
        network=network,
        limits=limits(memory, cpu_time, max_procs, disk, cpu),
    )
    return run_recipe(loaded, chosen, options, listener)


def size(value: Size, option: str) -> int:
    """Bytes from an int or a `512M`-style string; a bad one is a `UsageError` naming `option`."""
    from sandrun.errors import UsageError
    from sandrun.inputs import parse_size

    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"{option} {value!r} is not a size", hint="bytes, or e.g. 512M or 4G")
    if isinstance(value, int):
        if value < 0:
            raise UsageError(f"{option} {value!r} is not a size from 0 up")
        return value
    return parse_size(value, option)


def limits(memory: Size, cpu_time: int, max_procs: int, disk: Size, cpu: float | None) -> Limits:
    """The sandbox's resource limits from API arguments (0 means no limit, as on the command line)."""
    return Limits(
        memory=size(memory, "memory") or None,
        cpu_time=cpu_time or None,
        max_procs=max_procs or None,
        disk=size(disk, "disk") or None,
        cpu=cpu,
    )


def default_cache() -> Path:
    """Where environments for `packages` are built and kept: the command's cache directory."""
    from sandrun.environments import default_cache_dir

    return default_cache_dir(os.environ)

"""The pytest plugin (entry point `pytest11`): recipes as pytest items, one per code cell.

Off unless asked: `pytest --sandrun recipes/ README.md` (the recipes below the paths given), or
`sandrun_paths = ["recipes", "README.md"]` in `[tool.pytest.ini_options]` (those paths are then collected
along with the tests, unless the command line names what to collect). Until then this module is all that
is imported, and it adds nothing but its options. What it collects: YAML files with `cells:` and Markdown
files with a Python block, found below the paths; a percent-format `.py` only when the command line names
it (and it is not a test module by `python_files`), so that no test module is ever read as a recipe.
The defaults and skips of the project's `[tool.sandrun]` in pyproject.toml (found as `sandrun run` finds
it, from where pytest started) apply as on the command line, `--sandrun-timeout` in the place of
`--cell-timeout`; a recipe it skips is one skipped test at its line 1, with the reason. The items
themselves are in `sandrun.pytest_recipes`.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sandrun.project import Project

ROOTS = pytest.StashKey[list[Path]]()
"""The paths recipes are collected below, once the plugin is active."""
NAMED = pytest.StashKey[set[Path]]()
"""Files the command line names: taken whatever their suffix says (a percent-format `.py` included), and
never skipped by the project."""
PROJECT: pytest.StashKey[Project | None] = pytest.StashKey()
"""The pyproject.toml `[tool.sandrun]` found from where pytest started: its defaults apply, its skips too."""
RECIPE_SUFFIXES = (".yaml", ".yml", ".md", ".rst", ".ipynb")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options and its ini setting."""
    group = parser.getgroup("sandrun", "sandrun recipes (cells run in a sandbox)")
    group.addoption(
        "--sandrun",
        action="store_true",
        help="Collect sandrun recipes below the paths given, a test per cell.",
    )
    group.addoption(
        "--sandrun-backend", default=None, help="Where cells run (default: the recipe's, else local)."
    )
    group.addoption(
        "--sandrun-update",
        action="store_true",
        help="Rewrite the recipes' expected outputs from what ran (every cell of a collected recipe runs).",
    )
    group.addoption("--sandrun-timeout", type=float, default=None, help="Seconds per cell (default 60).")
    parser.addini("sandrun_paths", type="paths", default=[], help="Recipes (files, directories) to collect.")


def pytest_configure(config: pytest.Config) -> None:
    """Turn the plugin on when asked; with pytest-xdist, hand out whole recipes (`--dist loadfile`)."""
    enabled = bool(config.getoption("sandrun", False))
    configured: list[Path] = list(config.getini("sandrun_paths") or [])
    if not enabled and not configured:
        return
    named = config.args_source is pytest.Config.ArgsSource.ARGS
    given = [Path(config.invocation_params.dir, arg.split("::")[0]) for arg in config.args] if named else []
    if enabled and named:
        roots = given
    elif configured:
        roots = configured
        if not named:  # the tests come from testpaths: the recipes come along
            config.args.extend(str(path) for path in configured)
    else:
        raise pytest.UsageError(
            "--sandrun needs the recipes to run: name them (pytest --sandrun recipes/ README.md), "
            "or list them in sandrun_paths under [tool.pytest.ini_options]"
        )
    backend = config.getoption("sandrun_backend")
    if backend is not None:
        from sandrun.backends import BACKENDS

        if backend not in BACKENDS:
            raise pytest.UsageError(f"--sandrun-backend {backend!r} is not one of: {', '.join(BACKENDS)}")
    from sandrun.errors import SandrunError
    from sandrun.project import find_project

    try:
        config.stash[PROJECT] = find_project(config.invocation_params.dir)
    except SandrunError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[ROOTS] = [path.resolve() for path in roots]
    config.stash[NAMED] = {path.resolve() for path in given}
    config.addinivalue_line("markers", "sandrun: a cell of a sandrun recipe")
    if getattr(config.option, "numprocesses", None) and not _dist_given(config):
        config.option.dist = "loadfile"  # a recipe's cells share one interpreter: keep them on one worker


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A recipe file below the roots. A named `.py` comes through `pytest_pycollect_makemodule` when pytest
    takes it for a module (it is one of its initial paths), else here (a directory named too subsumed it)."""
    config = parent.config
    if ROOTS not in config.stash:
        return None
    if file_path.suffix == ".py" and not parent.session.isinitpath(file_path):
        return _named_percent_recipe(file_path, parent)
    if file_path.suffix.lower() not in RECIPE_SUFFIXES:
        return None
    path = file_path.resolve()
    if not any(path == root or root in path.parents for root in config.stash[ROOTS]):
        return None
    if path not in config.stash[NAMED]:
        from sandrun.discover import looks_like_recipe

        if not looks_like_recipe(file_path):
            return None
    from sandrun.pytest_recipes import RecipeFile

    recipe: pytest.Collector = RecipeFile.from_parent(parent, path=file_path)
    return recipe


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A percent-format `.py` named on the command line is a recipe, never imported as a test module
    (which would run its code on the host)."""
    if NAMED not in parent.config.stash:
        return None
    return _named_percent_recipe(module_path, parent)


def _named_percent_recipe(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The recipe of a `.py` the command line names, unless it is a test module by `python_files`."""
    config = parent.config
    if path.resolve() not in config.stash[NAMED]:
        return None
    if any(fnmatch.fnmatch(path.name, pattern) for pattern in config.getini("python_files")):
        return None
    from sandrun.pytest_recipes import RecipeFile

    recipe: pytest.Collector = RecipeFile.from_parent(parent, path=path)
    return recipe


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What `--sandrun-update` wrote."""
    if ROOTS not in terminalreporter.config.stash:
        return
    from sandrun.pytest_recipes import UPDATES

    for line in terminalreporter.config.stash.get(UPDATES, []):
        terminalreporter.write_line(f"sandrun: {line}")


def _dist_given(config: pytest.Config) -> bool:
    """Whether the command line chose an xdist distribution mode itself."""
    return any(arg in ("--dist", "-d") or arg.startswith("--dist=") for arg in config.invocation_params.args)

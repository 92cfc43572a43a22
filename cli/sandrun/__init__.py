"""sandrun: run Python recipes cell by cell in a sandbox.

The Python API (each name is imported on first use, so `import sandrun` stays cheap):

- `sandrun.run(path_or_recipe, *, backend=None, **options) -> Transcript` and `sandrun.load(path) -> Recipe`:
  what `sandrun run` does, without the terminal; reports from a transcript with `sandrun.reports`.
  A project's pyproject.toml `[tool.sandrun]` defaults apply only when asked (`project=True`, or a path).
- `sandrun.Session` (and `sandrun.AsyncSession` for asyncio): a code interpreter in a sandbox whose state
  carries from one `run(code)` to the next, with `Result`s, timeouts, uploads and downloads.
- The model's dataclasses and enums (`Recipe`, `Cell`, `Transcript`, `CellResult`, `CellStatus`, ...) and
  the errors (`SandrunError`, `RecipeError`, `UsageError`, `BackendError`).
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:  # the names below, for type checkers; at run time `__getattr__` imports them when used
    from sandrun import reports
    from sandrun.aio import AsyncSession
    from sandrun.api import load, run
    from sandrun.errors import BackendError, RecipeError, SandrunError, UsageError
    from sandrun.interpreter import Result, Session
    from sandrun.model import (
        Cell,
        CellError,
        CellKind,
        CellResult,
        CellStatus,
        Expectation,
        ExpectedText,
        MatchMode,
        OutputChunk,
        Recipe,
        RunStatus,
        Transcript,
    )

__all__ = [
    "AsyncSession",
    "BackendError",
    "Cell",
    "CellError",
    "CellKind",
    "CellResult",
    "CellStatus",
    "Expectation",
    "ExpectedText",
    "MatchMode",
    "OutputChunk",
    "Recipe",
    "RecipeError",
    "Result",
    "RunStatus",
    "SandrunError",
    "Session",
    "Transcript",
    "UsageError",
    "__version__",
    "load",
    "reports",
    "run",
]

_HOMES = {
    "sandrun.api": ("run", "load"),
    "sandrun.interpreter": ("Session", "Result"),
    "sandrun.aio": ("AsyncSession",),
    "sandrun.errors": ("SandrunError", "RecipeError", "UsageError", "BackendError"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}
"""Public name -> the module that defines it (every other public class comes from `sandrun.model`)."""


def __getattr__(name: str) -> object:
    """Import a public name's module when the name is first used (PEP 562)."""
    from importlib import import_module

    if name == "reports":
        return import_module("sandrun.reports")
    module = _LAZY.get(name, "sandrun.model" if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module 'sandrun' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later uses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""Errors sandrun reports to its users, each with the exit code it leads to.

    SandrunError                 any failure sandrun explains in words (exit_code 1)
    ├── UsageError               the command line is wrong (2)
    ├── RecipeError              a recipe file is wrong, at path:line (2)
    ├── RecipeProblems           several recipes could not be read, all listed (2; `sandrun.inputs`)
    ├── UpdateRefused            `--update` must not trust this run or this file (2; `sandrun.update`)
    └── BackendError             the sandbox could not start, or stopped working (3)
        └── EnvironmentBuildError  a recipe's packages could not be installed (3; `sandrun.environments`)

The three defined elsewhere live beside the only code that raises them.

Cells that fail are not errors in this sense: they are results, recorded in the transcript.
"""

from __future__ import annotations


class SandrunError(Exception):
    """Base of every error sandrun reports as a message instead of a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(SandrunError):
    """The command line asks for something impossible (unknown backend, bad --env, ...)."""

    exit_code = 2


class RecipeError(SandrunError):
    """A recipe cannot be read: says which file, which line, what is wrong and how to fix it."""

    exit_code = 2

    def __init__(self, path: str, line: int | None, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path
        self.line = line

    @property
    def location(self) -> str:
        """`path:line`, or just `path` when no line applies (an unreadable file)."""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        return f"{self.location}: {super().__str__()}"


class BackendError(SandrunError):
    """The sandbox could not be started or stopped answering; the message says why and what to do."""

    exit_code = 3

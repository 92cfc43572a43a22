"""Turning what the command line names into what the runner needs: sizes, variables, recipes, saved
transcripts. Every problem is a `UsageError` (or `RecipeError`) that says what is wrong, exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sandrun.errors import SandrunError, UsageError
from sandrun.model import Recipe, Transcript
from sandrun.readers import load_recipe

if TYPE_CHECKING:
    from sandrun.project import Project

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, option: str) -> int:
    """`512M`, `4G`, `1.5G` or a number of bytes, as bytes; anything else is a usage error."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in SIZE_UNITS else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a size", hint="e.g. 512M or 4G") from None
    if not 0 <= number * SIZE_UNITS[unit] < 1 << 62:  # also refuses nan and inf
        raise UsageError(f"{option} {text!r} is not a size from 0 to 4E", hint="e.g. 512M or 4G")
    return int(number * SIZE_UNITS[unit])


def parse_env(pairs: list[str]) -> dict[str, str]:
    """`--env K=V` options as a mapping; a pair without `=` is a usage error."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {pair!r} is not of the form NAME=VALUE")
        env[key] = value
    return env


def load_all(
    paths: list[Path], check_outputs: bool = False, project: Project | None = None, cli_timeout: bool = False
) -> list[Recipe]:
    """Every recipe, or a usage error listing every one that is wrong (nothing runs then);
    `check_outputs`: notebooks' stored outputs are their expectations; `project`: its settings apply
    (`cli_timeout`: the command line gave a default timeout, which beats the project's)."""
    recipes, problems = [], []
    for path in paths:
        try:
            recipe = (
                project.load(path, check_outputs, cli_timeout)
                if project
                else load_recipe(path, check_outputs)
            )
            recipes.append(recipe)
        except SandrunError as exc:
            problems.append(str(exc))
    if problems:
        raise RecipeProblems("\n".join(problems))
    return recipes


class RecipeProblems(SandrunError):
    """One or more recipes could not be read; the message lists them all."""

    exit_code = 2


def load_transcripts(path: Path) -> list[Transcript]:
    """The transcripts in a JSON file written by sandrun; anything else is a usage error."""
    from sandrun.reports.json_report import transcript_from_dict

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        return [transcript_from_dict(item) for item in items]
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: not a sandrun JSON transcript ({type(exc).__name__}: {exc})") from None


def format_report_path(path: Path) -> str:
    """The format a `--report` path asks for; an unknown suffix is a usage error."""
    from sandrun.reports import format_for_path  # the report writers: only when a report is asked for

    try:
        return format_for_path(path)
    except ValueError as exc:
        raise UsageError(f"--report {path}: {exc}") from None


def choose_annotations(option: str | None, environ: Mapping[str, str]) -> bool:
    """Whether to print GitHub annotations: as asked, or by default inside GitHub Actions."""
    if option is None:
        return environ.get("GITHUB_ACTIONS") == "true"
    if option not in ("github", "none"):
        raise UsageError(f"--annotations {option!r} is not one of: github, none")
    return option == "github"

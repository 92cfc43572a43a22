"""Finding recipes: the command line may name files, directories and glob patterns.

A directory is searched recursively (hidden and linked directories, environments and caches are skipped) for
`*.yaml` and `*.yml` files with a top-level `cells:` key, `*.py` files in the percent format (a `# %%`
line), `*.md` documents with a fenced Python block, `*.ipynb` notebooks with a code cell, and `*.rst`
documents with a Python example (a Python code-block, a testcode or doctest directive, a `>>> ` line). A
file named explicitly is always taken, whatever it holds: the reader will say if it is not a recipe.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from sandrun.errors import UsageError

SKIPPED_DIRECTORIES = {"__pycache__", "node_modules", "venv", "site-packages", "build", "dist"}
YAML_CELLS = re.compile(rb"^cells[ \t]*:", re.MULTILINE)
PERCENT_MARKER = re.compile(rb"^[ \t]*#[ \t]*%%", re.MULTILINE)
NOTEBOOK_CODE = re.compile(rb'"cell_type"\s*:\s*"code"')
PYTHON_FENCE = re.compile(rb"^[ ]{0,3}(`{3,}|~{3,})[ \t]*(python|py|pycon)\b", re.MULTILINE | re.IGNORECASE)
RST_PYTHON = re.compile(
    rb"^[ \t]*(?:>>> |\.\.[ \t]+(?:testcode|doctest)[ \t]*::"
    rb"|\.\.[ \t]+(?:code-block|code|sourcecode)[ \t]*::[ \t]*(?:python|py|pycon)\b)",
    re.MULTILINE | re.IGNORECASE,
)
GLOB_CHARACTERS = set("*?[")


def find_recipes(arguments: Iterable[str]) -> list[Path]:
    """The recipe files the arguments name, in a stable order, each once. A name that matches nothing is a
    usage error (so a typo in CI fails loudly instead of running nothing)."""
    found: dict[Path, None] = {}
    for argument in arguments:
        matches = expand(argument)
        if not matches:
            raise UsageError(f"{argument}: no such file, directory or matching recipe")
        found.update(dict.fromkeys(matches))
    return list(found)


def expand(argument: str) -> list[Path]:
    """What one argument names: itself (a file), the recipes below it (a directory), or a glob's matches."""
    path = Path(argument)
    if path.is_dir():
        return sorted(recipes_below(path))
    if path.exists() or not GLOB_CHARACTERS & set(argument):
        return [path] if path.exists() else []
    matches = sorted(Path(m) for m in glob.glob(argument, recursive=True))
    return [m for m in matches if m.is_file() and looks_like_recipe(m)] + [
        r for m in matches if m.is_dir() for r in sorted(recipes_below(m))
    ]


def recipes_below(directory: Path) -> Iterator[Path]:
    """Recipe files anywhere below `directory`."""
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            if (
                not entry.is_symlink()
                and not entry.name.startswith(".")
                and entry.name not in SKIPPED_DIRECTORIES
            ):
                yield from recipes_below(entry)
        elif looks_like_recipe(entry):
            yield entry


def looks_like_recipe(path: Path) -> bool:
    """Whether a file found by searching is a recipe: by suffix, and for .py, .md, .ipynb, .rst by a look
    inside."""
    patterns = {".yaml": YAML_CELLS, ".yml": YAML_CELLS, ".py": PERCENT_MARKER, ".md": PYTHON_FENCE}
    pattern = {**patterns, ".ipynb": NOTEBOOK_CODE, ".rst": RST_PYTHON}.get(path.suffix.lower())
    if pattern is None:
        return False
    try:
        return pattern.search(path.read_bytes()) is not None
    except OSError:
        return False

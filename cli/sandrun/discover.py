"""Finding recipes: the command line may name files, directories and glob patterns.

A directory is searched recursively (hidden and linked directories, environments and caches are skipped) for
`*.yaml` and `*.yml` files with a top-level `cells:` key, `*.py` files in the percent format (a `# %%`
line), `*.md` documents with a Python block (a fence in any container, MyST's Python directives), `*.ipynb`
notebooks with a code cell, and `*.rst` documents with a Python example (a Python code-block, a testcode,
testsetup or doctest directive); a document with only a `>>> ` line is asked of its reader. A
file named explicitly is always taken, whatever it holds: the reader will say if it is not a recipe.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from sandrun.errors import RecipeError, UsageError

SKIPPED_DIRECTORIES = {"__pycache__", "node_modules", "venv", "site-packages", "build", "dist"}
YAML_CELLS = re.compile(rb"^cells[ \t]*:", re.MULTILINE)
PERCENT_MARKER = re.compile(rb"^[ \t]*#[ \t]*%%", re.MULTILINE)
NOTEBOOK_CODE = re.compile(rb'"cell_type"\s*:\s*"code"')
_LANGUAGE = rb"(?:python3?|py3?|ipython3?|pycon)(?![\w.-])"
_CONTAINER = rb"^(?:[ \t>]|[-*+][ \t]|[0-9]{1,9}[.)][ \t])*"  # blockquote and list item prefixes
_MYST = rb"\{(?:code-cell|code-block|code|sourcecode)\}[ \t]*" + _LANGUAGE
PYTHON_FENCE = re.compile(  # at any depth of containers; Pandoc's, Quarto's and MyST's forms too
    _CONTAINER + rb"(?:`{3,}|~{3,})[ \t]*(?:" + rb"|".join(
        [_LANGUAGE, rb"\{[ \t]*\.?" + _LANGUAGE, _MYST, rb"\{(?:doctest|testcode|testsetup|testcleanup)\}"]
    ) + rb")",
    re.MULTILINE | re.IGNORECASE,
)  # fmt: skip
RST_PYTHON = re.compile(
    rb"^[ \t]*\.\.[ \t]+(?:(?:testcode|testsetup|doctest)[ \t]*::"
    rb"|(?:code-block|code|sourcecode)[ \t]*::[ \t]*" + _LANGUAGE + rb")",
    re.MULTILINE | re.IGNORECASE,
)
SESSION = re.compile(_CONTAINER + rb">>> ", re.MULTILINE)
"""A `>>>` line: a document with one but no Python block above may hold a session; its reader says."""
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
        data = path.read_bytes()
    except OSError:
        return False
    if pattern.search(data):
        return True
    return path.suffix.lower() in (".md", ".rst") and SESSION.search(data) is not None and _has_cells(path)


def _has_cells(path: Path) -> bool:
    """Whether the document's reader finds examples in it (a reader's other complaints are the user's to
    see, so they make it a recipe too). Asked only of documents with a `>>>` line but no Python block."""
    from sandrun.readers import load_recipe

    try:
        load_recipe(path)
    except RecipeError as exc:
        return "no Python" not in exc.message
    return True

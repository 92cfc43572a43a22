"""Project defaults from `pyproject.toml`'s `[tool.sandrun]`, so that a repository's CI line is just
`sandrun run`:

    [tool.sandrun]
    paths = ["README.md", "docs/", "recipes/"]   # what `sandrun run` runs when given no paths
"""

from __future__ import annotations

import difflib
from pathlib import Path

from sandrun.errors import RecipeError

KEYS = ("paths",)


def default_paths(directory: Path) -> list[str]:
    """The paths `[tool.sandrun] paths` names in `directory`'s pyproject.toml (relative to it), or none.
    A wrong table is a `RecipeError` at its line."""
    path = directory / "pyproject.toml"
    if not path.is_file():
        return []
    import tomllib  # lazily: only `sandrun run` without paths reads it

    text = path.read_text(encoding="utf-8")
    try:
        table = tomllib.loads(text).get("tool", {}).get("sandrun", {})
    except (tomllib.TOMLDecodeError, AttributeError) as exc:
        raise RecipeError(str(path), None, f"cannot read [tool.sandrun]: {exc}") from None
    line = next((n for n, x in enumerate(text.split("\n"), 1) if x.strip() == "[tool.sandrun]"), None)
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = (f"did you mean {close[0]!r}? " if close else "") + f"valid keys: {', '.join(KEYS)}"
            raise RecipeError(str(path), line, f"unknown key {key!r} in [tool.sandrun]", hint)
    paths = table.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise RecipeError(str(path), line, "[tool.sandrun] paths must be a list of paths", 'e.g. ["docs/"]')
    return [str(directory / p) if directory != Path() else p for p in paths]

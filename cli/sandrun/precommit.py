"""`python -m sandrun.precommit FILE...`: the pre-commit hooks' entry (see `.pre-commit-hooks.yaml`).

pre-commit passes every changed file that the hook's `files` pattern matches, and not every YAML or Markdown
file is a recipe (a CI workflow, a changelog). This entry drops the files that do not look like recipes,
as `sandrun run DIRECTORY` would when it searches, and runs `sandrun run` on the rest with the other
arguments unchanged (`--update` for the `sandrun-update` hook). No recipe left: nothing to do, exit 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sandrun.discover import looks_like_recipe


def recipe_arguments(arguments: list[str]) -> tuple[list[str], int]:
    """The arguments without the files that are not recipes, and how many recipe files are left."""
    kept: list[str] = []
    recipes = 0
    for argument in arguments:
        path = Path(argument)
        if not argument.startswith("-") and path.is_file():
            if not looks_like_recipe(path):
                continue
            recipes += 1
        kept.append(argument)
    return kept, recipes


def main(argv: list[str] | None = None) -> int:
    """Run the recipes among the arguments; the exit code is `sandrun run`'s."""
    kept, recipes = recipe_arguments(list(sys.argv[1:] if argv is None else argv))
    if not recipes:
        print("sandrun: no recipes among the files given", file=sys.stderr)
        return 0
    from sandrun.app import app

    try:
        app(args=["run", *kept], prog_name="sandrun")
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

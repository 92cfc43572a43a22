"""Settings of a percent-format `.py` recipe from its PEP 723 inline script metadata, the block that `uv run`
and `pipx run` read too:

    # /// script
    # requires-python = ">=3.11"
    # dependencies = ["rich>=13"]
    #
    # [tool.sandrun]
    # timeout = 30
    # env = {GREETING = "hello"}
    # ///

`dependencies` become the recipe's `packages`; `[tool.sandrun]` takes a YAML recipe's top-level keys
(`timeout`, `env`, `network`, `files`, `python`, `packages`, `backend`, `name`, `description`), checked by the
same rules. `requires-python` is read by the tools that pick an interpreter and left alone here.
"""

from __future__ import annotations

import re
from typing import Any

from sandrun.errors import RecipeError

_BLOCK = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(?:^#(?:| .*)$\s)+)^# ///$"
)  # PEP 723's


def settings(text: str, path: str) -> dict[str, Any]:
    """Keyword arguments for `Recipe` from the file's `script` block (none: no settings). A malformed block
    or setting is a `RecipeError` at its line."""
    blocks = [match for match in _BLOCK.finditer(text) if match["type"] == "script"]
    if not blocks:
        return {}
    block = blocks[0]
    first = text.count("\n", 0, block.start()) + 1
    if len(blocks) > 1:
        raise RecipeError(path, text.count("\n", 0, blocks[1].start()) + 1, "a second `# /// script` block")
    from sandrun.toml_text import TOMLDecodeError, loads  # lazily: only scripts with metadata need it

    content = "".join(
        line[2:] if line.startswith("# ") else line[1:] for line in block["content"].splitlines(keepends=True)
    )
    try:
        data = loads(content)
    except (TOMLDecodeError, RecursionError, ValueError) as exc:
        raise RecipeError(path, first, f"invalid TOML in the `# /// script` block: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("sandrun", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise RecipeError(path, first, "[tool.sandrun] must be a table")
    table = dict(table)
    dependencies, packages = data.get("dependencies", []), table.get("packages", [])
    if isinstance(dependencies, list) and isinstance(packages, list):
        packages = [*dependencies, *packages]
    table.update({"packages": packages} if packages else {})
    return _checked(table, path, first, content)


def _checked(table: dict[str, Any], path: str, first: int, content: str) -> dict[str, Any]:
    """The settings checked as a YAML recipe's top-level keys; an error points at the line of its key."""
    import yaml

    from sandrun.readers.yaml_recipe import front_matter

    dumped = yaml.safe_dump({"sandrun": table})
    try:
        return front_matter(dumped, path, what="[tool.sandrun]")
    except RecipeError as exc:
        above = dumped.split("\n")[: exc.line or 0]
        key = next((m[1] for line in reversed(above) if (m := re.match(r"  ([^ :]+):", line))), "")
        keys = {key, "dependencies"} if key == "packages" else {key}
        lines = content.split("\n")
        at = next((i for i, line in enumerate(lines) if key and line.partition("=")[0].strip() in keys), None)
        line = first + 1 + at if at is not None else first
        raise RecipeError(path, line, exc.message, exc.hint) from None

"""Project defaults from `pyproject.toml`'s `[tool.sandrun]`, so that a repository's CI line is just
`sandrun run`:

    [tool.sandrun]
    paths = ["README.md", "docs/"]   # what `sandrun run` runs when given no paths
    match = "whitespace"             # match mode of expected texts that name none (default: ellipsis)
    timeout = 30                     # seconds per cell, unless the cell, its recipe or --cell-timeout says
    env = {LANG = "C.UTF-8"}         # network, python, packages, backend: as a YAML recipe's keys
    packages = ["."]                 # local paths (and a `python` with a `/`) are relative to this file

    [[tool.sandrun.overrides]]       # the files its globs match (relative to this file); later ones win
    paths = ["docs/gpu/**"]
    skip = true
    reason = "needs a GPU"

The file is the nearest `pyproject.toml` with a `[tool.sandrun]` table, looking up from the current
directory, but not above a directory that holds `.git` or `.hg`; one found above the current directory
must belong to the user or to root (as git refuses a repository another user owns). Each setting is
checked by the rules of the YAML recipe's top-level key of the same name (`yaml_recipe.read_settings`); a
broken rule is a `RecipeError` at the line of its key.

Precedence: the command line, then the recipe's own settings, then the overrides that match it (the later
over the earlier), then `[tool.sandrun]`, then sandrun's defaults. `env` is merged variable by variable in
that order, and `packages` add up. A timeout is the cell's, else its recipe's, else `--cell-timeout`, else
the overrides', else the project's, else 60 s.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sandrun.errors import RecipeError
from sandrun.model import MATCH_MODES, Cell, CellResult, CellStatus, MatchMode, Recipe, RunStatus, Transcript

if TYPE_CHECKING:
    from sandrun.toml_text import KeyLines

SETTING_KEYS = ("match", "timeout", "env", "network", "python", "packages", "backend")
"""Recipe settings a project may give, for all its recipes or for those an override matches."""
PROJECT_KEYS = ("paths", *SETTING_KEYS, "overrides")
OVERRIDE_KEYS = ("paths", *SETTING_KEYS, "skip", "reason")
BOUNDARIES = (".git", ".hg")
"""A directory holding one of these is a repository's top: the search for pyproject.toml stops there."""
_TABLE = ("tool", "sandrun")


@dataclass(frozen=True)
class Settings:
    """Recipe settings from a project (each None or empty when it does not give it)."""

    match: MatchMode | None = None
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    network: bool | None = None
    python: str | None = None
    packages: tuple[str, ...] = ()
    backend: str | None = None

    def then(self, later: Settings) -> Settings:
        """These settings with `later`'s laid over them (`env` merged, `packages` added)."""
        return Settings(
            match=later.match or self.match,
            timeout=later.timeout or self.timeout,
            env={**self.env, **later.env},
            network=self.network if later.network is None else later.network,
            python=later.python or self.python,
            packages=tuple(dict.fromkeys((*self.packages, *later.packages))),
            backend=later.backend or self.backend,
        )


@dataclass(frozen=True)
class Override:
    """One `[[tool.sandrun.overrides]]` table."""

    patterns: tuple[str, ...]
    """Globs relative to the project's directory (`*`, `?`, `[...]` within a name, `**` across
    directories); a glob that matches a directory matches everything below it."""
    settings: Settings
    skip: bool | None
    """Whether the files it matches are skipped (None: it does not say)."""
    reason: str | None
    line: int | None
    """Line of the table in pyproject.toml."""

    def matches(self, relative: str) -> bool:
        """Whether a path relative to the project's directory (with `/`), or a directory above it, matches."""
        parts = relative.split("/")
        candidates = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
        return any(glob_regex(p).fullmatch(c) for p in self.patterns for c in candidates)


@dataclass(frozen=True)
class Skip:
    """A recipe file the project skips, and where it says so."""

    path: Path
    where: str
    """`pyproject.toml:LINE` of the override that skips it."""
    reason: str | None

    @property
    def why(self) -> str:
        """`skipped by pyproject.toml:LINE: reason`."""
        return f"skipped by {self.where}" + (f": {self.reason}" if self.reason else "")

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"

    def transcript(self) -> Transcript:
        """The skip as reports show it: the file (never read as a recipe; format `skipped`) with one
        skipped entry at its line 1 that says why, so that JSON and JUnit list it beside the runs."""
        import hashlib
        from datetime import datetime, timezone

        from sandrun import __version__

        try:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            digest = hashlib.sha256(b"").hexdigest()
        entry = Cell(
            index=0, source="", path=str(self.path), line=1, name="(skipped by the project)", skip=True,
            skip_reason=self.why,
        )  # fmt: skip
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return Transcript(
            recipe=Recipe(path=str(self.path), sha256=digest, format="skipped", cells=(entry,)),
            backend="none",
            isolation="not started",
            status=RunStatus.SKIPPED,
            results=(CellResult(entry, CellStatus.SKIPPED, reason=self.why),),
            started_at=now,
            duration=0.0,
            tool_version=__version__,
            reason=self.why,
        )


@dataclass(frozen=True)
class Project:
    """A project's `[tool.sandrun]`, checked."""

    file: str
    """The pyproject.toml as messages name it (relative to the current directory when below it)."""
    root: Path
    """Its directory, absolute: paths, globs, local packages are relative to it."""
    paths: tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings)
    overrides: tuple[Override, ...] = ()

    def default_paths(self) -> list[str]:
        """What `sandrun run` runs when given no paths, as paths from the current directory."""
        return [_shown(self.root / path) for path in self.paths]

    def _matching(self, path: str | os.PathLike[str]) -> list[Override]:
        relative = os.path.relpath(os.path.abspath(path), self.root).replace(os.sep, "/")
        if relative == ".." or relative.startswith("../"):
            return []
        return [override for override in self.overrides if override.matches(relative)]

    def settings_for(self, path: str | os.PathLike[str]) -> Settings:
        """The project's settings for the recipe at `path`: the table's, then each matching override's."""
        settings = self.settings
        for override in self._matching(path):
            settings = settings.then(override.settings)
        return settings

    def unmatched_overrides(self, found: list[Path]) -> list[str]:
        """A warning for each override whose globs match none of the recipes `found` in the project's
        paths: a misspelt glob would otherwise apply nothing, and say nothing."""
        matched = {id(override) for path in found for override in self._matching(path)}
        return [
            f"{self.file}:{override.line or 1}: the override's paths {list(override.patterns)} match no "
            "recipe of the project's paths"
            for override in self.overrides
            if id(override) not in matched
        ]

    def skip_for(self, path: Path) -> Skip | None:
        """Why the project skips the recipe at `path`, if it does (the last override that says wins)."""
        deciding = [override for override in self._matching(path) if override.skip is not None]
        if not deciding or not deciding[-1].skip:
            return None
        return Skip(path, f"{self.file}:{deciding[-1].line or 1}", deciding[-1].reason)

    def load(
        self, path: str | os.PathLike[str], check_outputs: bool = False, cli_timeout: bool = False
    ) -> Recipe:
        """Read the recipe at `path` with the project's settings for it (see `apply`)."""
        from sandrun.readers import load_recipe

        settings = self.settings_for(path)
        return apply(load_recipe(os.fspath(path), check_outputs, settings.match), settings, cli_timeout)


def apply(recipe: Recipe, settings: Settings, cli_timeout: bool = False) -> Recipe:
    """`recipe` with the project's `settings` where it gives none of its own (`env` merged, `packages`
    added); `cli_timeout`: the command line gave a default timeout, which beats the project's."""
    return replace(
        recipe,
        timeout=recipe.timeout if recipe.timeout is not None or cli_timeout else settings.timeout,
        env={**settings.env, **recipe.env},
        network=settings.network if recipe.network is None else recipe.network,
        python=recipe.python or settings.python,
        packages=tuple(dict.fromkeys((*settings.packages, *recipe.packages))),
        backend=recipe.backend or settings.backend,
    )


def find_project(start: Path | None = None) -> Project | None:
    """The project of the nearest `pyproject.toml` with a `[tool.sandrun]` table, looking up from `start`
    (default: the current directory) to the top of its repository; None if there is none."""
    directory = Path(os.path.abspath(start or Path.cwd()))
    for place in (directory, *directory.parents):
        candidate = place / "pyproject.toml"
        if candidate.is_file():
            project = read_project(candidate, above=place != directory)
            if project is not None:
                return project
        if any((place / boundary).exists() for boundary in BOUNDARIES):
            return None
    return None


def read_project(path: Path, above: bool = False) -> Project | None:
    """The `[tool.sandrun]` of the pyproject.toml at `path`, checked; None if it has none. `above`: it was
    found in a directory above the current one, so it must belong to the user or to root (on a shared
    machine, another user can leave one in `/tmp`, or any directory open to all, that would skip recipes,
    turn the network on or set variables for every run below it); the current directory's own file is the
    user's choice, and is read whoever owns it. The owner is that of the file as opened and read."""
    from sandrun.safefs import owned_by_user_or_root

    shown = _shown(path)
    try:
        with open(path, "rb") as file:
            owner = os.fstat(file.fileno()).st_uid
            if above and not owned_by_user_or_root(owner):
                raise RecipeError(
                    shown,
                    None,
                    f"not read: it belongs to uid {owner}, neither you nor root, and is in a directory above "
                    "this one (on a shared machine, another user could have put it there)",
                    hint=f"run sandrun from {_shown(path.parent)}, or make the file yours",
                )
            data = file.read()
    except OSError as exc:
        raise RecipeError(shown, None, f"cannot read it: {exc.strerror}") from None
    if b"sandrun" not in data:  # the common case, without a TOML parser
        return None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise RecipeError(shown, data[: exc.start].count(b"\n") + 1, "invalid UTF-8") from None
    from sandrun.toml_text import KeyLines, TOMLDecodeError, loads  # only a project that names sandrun

    try:
        document = loads(text)
    except (TOMLDecodeError, RecursionError) as exc:
        at = re.search(r"line (\d+)", str(exc))
        raise RecipeError(shown, int(at[1]) if at else None, f"invalid TOML: {exc}") from None
    tool = document.get("tool")
    if not isinstance(tool, dict) or "sandrun" not in tool:
        return None
    checker = _Checker(shown, path.parent.absolute(), KeyLines(text))
    return checker.project(tool["sandrun"])


class _Checker:
    """Checks the tables of one pyproject.toml; every error names the line of the offending key."""

    def __init__(self, shown: str, root: Path, lines: KeyLines) -> None:
        self.shown = shown
        self.root = root
        self.lines = lines

    def fail(self, key: tuple[str | int, ...], message: str, hint: str | None = None) -> RecipeError:
        """A RecipeError at the line of `key` (a path of table names, array indexes and keys)."""
        return RecipeError(self.shown, self.lines.line_of(key), message, hint)

    def table(
        self, value: object, key: tuple[str | int, ...], what: str, keys: tuple[str, ...]
    ) -> dict[str, Any]:
        """A table whose keys are all among `keys` (an unknown one with "did you mean")."""
        if not isinstance(value, dict):
            raise self.fail(key, f"{what} must be a table", f"valid keys: {', '.join(keys)}")
        for name in value:
            if name not in keys:
                close = difflib.get_close_matches(name, keys, n=1)
                hint = (f"did you mean {close[0]!r}? " if close else "") + f"valid keys: {', '.join(keys)}"
                raise self.fail((*key, name), f"unknown key {name!r} in {what}", hint)
        return value

    def project(self, value: object) -> Project:
        """The whole `[tool.sandrun]` table."""
        table = self.table(value, _TABLE, "[tool.sandrun]", PROJECT_KEYS)
        paths = self.paths(table, _TABLE, "[tool.sandrun] paths", globs=False) if "paths" in table else ()
        raw = table.get("overrides", [])
        if not isinstance(raw, list):
            raise self.fail((*_TABLE, "overrides"), "overrides must be an array of tables", _OVERRIDE_HINT)
        overrides = tuple(self.override(item, (*_TABLE, "overrides", n)) for n, item in enumerate(raw))
        return Project(
            self.shown, self.root, paths, self.settings(table, _TABLE, "[tool.sandrun]"), overrides
        )

    def override(self, value: object, key: tuple[str | int, ...]) -> Override:
        """One `[[tool.sandrun.overrides]]` table."""
        what = f"[[tool.sandrun.overrides]] number {int(key[-1]) + 1}"
        table = self.table(value, key, what, OVERRIDE_KEYS)
        if "paths" not in table:
            raise self.fail(key, f"{what} has no paths", _OVERRIDE_HINT)
        skip = table.get("skip")
        if skip is not None and not isinstance(skip, bool):
            raise self.fail((*key, "skip"), f"{what} skip must be true or false")
        reason = table.get("reason")
        if reason is not None and (not isinstance(reason, str) or skip is not True):
            raise self.fail((*key, "reason"), f"{what} reason must be a string, beside skip = true")
        patterns = self.paths(table, key, f"{what} paths", globs=True)
        return Override(patterns, self.settings(table, key, what), skip, reason, self.lines.line_of(key))

    def paths(
        self, table: dict[str, Any], key: tuple[str | int, ...], what: str, globs: bool
    ) -> tuple[str, ...]:
        """A list of relative paths (or globs) inside the project's directory."""
        value, where = table["paths"], (*key, "paths")
        example = '["docs/legacy/**", "*.ipynb"]' if globs else '["README.md", "docs/"]'
        if not isinstance(value, list) or not value or not all(isinstance(p, str) and p for p in value):
            raise self.fail(where, f"{what} must be a list of paths", f"e.g. {example}")
        for path in value:
            pure = PurePosixPath(path)
            if pure.is_absolute() or ".." in pure.parts:
                raise self.fail(
                    where, f"{what}: {path!r} must be relative to {self.shown}'s directory, inside it"
                )
        return tuple(value)

    def settings(self, table: dict[str, Any], key: tuple[str | int, ...], what: str) -> Settings:
        """The recipe settings in a table, each checked as a YAML recipe's top-level key is."""
        import yaml

        from sandrun.readers.yaml_recipe import read_settings

        found: dict[str, Any] = {}
        for name in SETTING_KEYS:
            if name not in table:
                continue
            if name == "match":
                found["match"] = self.match(table["match"], (*key, "match"), what)
                continue
            try:
                found[name] = read_settings(yaml.safe_dump({name: table[name]}), self.shown, what)[name]
            except RecipeError as exc:
                raise self.fail((*key, name), exc.message, exc.hint) from None
            except yaml.YAMLError:  # a TOML time of day, which YAML cannot say
                raise self.fail((*key, name), f"{name}: this kind of value is not taken here") from None
        packages = tuple(
            str(self.root / p) if (self.root / p).exists() else p for p in found.get("packages", ())
        )
        python = found.get("python")
        if python and "/" in python and not os.path.isabs(python):
            python = str(self.root / python)
        return Settings(
            match=found.get("match"),
            timeout=found.get("timeout"),
            env=found.get("env", {}),
            network=found.get("network"),
            python=python,
            packages=packages,
            backend=found.get("backend"),
        )

    def match(self, value: object, key: tuple[str | int, ...], what: str) -> MatchMode:
        """A match mode's name."""
        if not isinstance(value, str) or value not in MATCH_MODES:
            close = difflib.get_close_matches(str(value), MATCH_MODES, n=1)
            hint = (f"did you mean {close[0]!r}? " if close else "") + f"use one of: {', '.join(MATCH_MODES)}"
            raise self.fail(key, f"{what} match {value!r} is not a match mode", hint)
        return MatchMode(value)


_OVERRIDE_HINT = 'e.g. [[tool.sandrun.overrides]] with paths = ["docs/legacy/**"] and skip = true'


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression over `/`-separated relative paths: `*`, `?` and `[...]` stay within
    one name, `**` spans directories (`docs/**/*.md` matches `docs/a.md` too); a leading `./` and a trailing
    `/` are ignored."""
    glob = pattern.removeprefix("./").rstrip("/")
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def _shown(path: Path) -> str:
    """A path as messages show it: relative to the current directory (`../README.md` from `docs/`)."""
    return os.path.relpath(os.path.abspath(path))

"""The user's pip configuration, read on the host and carried into a package build's sandbox.

sandrun's own pip reports the effective settings (`pip config list`: configuration files and `PIP_*`
variables). Inside the sandbox they become `PIP_*` variables (no configuration file is read there), the
local files and directories they name (certificates, constraints, find-links, `file://` indexes) are bound
read-only at their own paths, and the index hosts they name make the proxy's allow-list.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sandrun.backends.index_proxy import AllowList

NOT_CARRIED = frozenset(
    {
        "proxy",
        "cache-dir",
        "no-cache-dir",
        "log",
        "log-file",
        "target",
        "prefix",
        "root",
        "user",
        "python",
        "src",
    }
    | {"config-file", "isolated", "no-input", "quiet", "verbose", "exists-action"}
)
"""Settings that sandrun sets itself for a build, or that would write outside the environment."""
PATH_SETTINGS = frozenset(
    {"cert", "client-cert", "constraint", "requirement", "build-constraint", "find-links"}
)
"""Settings whose values are local files or directories (or file:// URLs of them)."""
INDEX_SETTINGS = frozenset({"index-url", "extra-index-url"})


@dataclass(frozen=True)
class PipSettings:
    """What a sandboxed build needs to honour the user's pip configuration."""

    env: dict[str, str] = field(default_factory=dict)
    """`PIP_*` variables to set inside (`PIP_CONFIG_FILE` is /dev/null: nothing else is read)."""
    paths: tuple[Path, ...] = ()
    """Existing local files and directories the settings name, to bind read-only at their own paths."""
    allow: AllowList = field(default_factory=AllowList)
    """The index hosts the settings name (the default index when they name none)."""


def read_pip_config(environ: Mapping[str, str] | None = None) -> PipSettings:
    """The effective settings of sandrun's own pip for `pip install`, as the host user sees them."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ if environ is None else environ),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return settings_from({})
    return settings_from(parse_config_list(done.stdout if done.returncode == 0 else ""))


def parse_config_list(text: str) -> dict[str, str]:
    """`pip config list` output (`section.key='value'`, in pip's override order) -> key -> value, for the
    sections `pip install` reads (`global`, `install`, and `:env:` for PIP_* variables)."""
    rank = {"global": 0, "install": 1, ":env:": 2}
    found: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        section, dot, key = name.rpartition(".")
        if not sep or not dot or section not in rank:
            continue
        try:
            value = ast.literal_eval(raw) if raw[:1] in "'\"" else raw
        except (ValueError, SyntaxError):
            continue
        if key not in found or rank[section] >= found[key][0]:
            found[key] = (rank[section], str(value))
    return {key: value for key, (_, value) in found.items()}


def settings_from(config: Mapping[str, str]) -> PipSettings:
    """The sandbox's view of `config` (key -> value, as pip's configuration holds them)."""
    env = {"PIP_CONFIG_FILE": os.devnull}
    paths: list[Path] = []
    for key, value in config.items():
        if key in NOT_CARRIED:
            continue
        env[f"PIP_{key.upper().replace('-', '_')}"] = value
        for token in value.split():
            local = local_path(token)
            if local is None or key not in PATH_SETTINGS | INDEX_SETTINGS:
                continue
            if key in INDEX_SETTINGS and local.is_dir() and local.parent != Path("/"):
                local = local.parent  # a `simple/` tree links to its files beside it (../files/...)
            if local.exists() and Path("/usr") not in (local, *local.parents):
                paths.append(local)
    urls = [t for key in ("extra-index-url", "find-links") for t in config.get(key, "").split()]
    trusted = config.get("trusted-host", "").split()
    allow = AllowList.from_pip(config.get("index-url") or None, urls, trusted)
    return PipSettings(env, tuple(dict.fromkeys(paths)), allow)


def local_path(token: str) -> Path | None:
    """The local absolute path a setting's value names (a path or a file:// URL), else None."""
    if token.startswith("file:"):
        parts = urlsplit(token)
        path = unquote(parts.path)
        return Path(path) if parts.netloc in ("", "localhost") and os.path.isabs(path) else None
    return Path(token) if os.path.isabs(token) else None

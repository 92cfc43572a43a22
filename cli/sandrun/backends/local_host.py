"""What the local backend needs to know about the host: which directories an interpreter needs, whether
sandrun is really root, which uid a sandbox gets then, and the launcher that stages directories that uid
cannot reach.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

from sandrun.errors import BackendError

LAUNCH_TOOLS = ("unshare", "mount", "setpriv")
"""util-linux programs that stage unreachable directories when sandrun is root (on glibc distributions)."""


def launcher(binds: Sequence[tuple[str, str]], uid: int, argv: Sequence[str]) -> list[str]:
    """A command that, as root: enters a private mount namespace, bind-mounts each unreachable source onto
    its reachable staging point, drops to `uid` (no groups, no capabilities) and execs `argv` (bubblewrap).

    A few small C programs rather than a Python launcher: about 7 ms instead of 25 ms.
    """
    tools = {name: shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin") for name in LAUNCH_TOOLS}
    missing = [name for name, found in tools.items() if not found]
    if missing:
        raise BackendError(
            f"running as root with an interpreter in a private directory needs {', '.join(missing)} "
            "(util-linux)",
            hint="install util-linux, or use an interpreter outside 0700 directories (--python)",
        )
    mounts = " && ".join(f'{tools["mount"]} --bind "${2 * i + 1}" "${2 * i + 2}"' for i in range(len(binds)))
    script = f"{mounts} && shift {2 * len(binds)} && exec {tools['setpriv']} --reuid={uid} --regid={uid} "
    script += '--clear-groups -- "$@"'
    sources = [part for pair in binds for part in pair]
    enter = [str(tools["unshare"]), "--mount", "--propagation", "private", "--"]
    return [*enter, "/bin/sh", "-c", script, "sandrun-launcher", *sources, *argv]


def resolve_python(python: str) -> str:
    """An absolute path for `python` (a bare name is looked up on PATH)."""
    found = python if os.sep in python else shutil.which(python)
    if not found:
        raise BackendError(f"no interpreter named {python!r} on PATH", hint="give --python an absolute path")
    return os.path.abspath(found)


def python_roots(python: str) -> list[Path]:
    """Directories the interpreter needs: its prefix, the real one behind a venv's link, the venv's home."""
    candidates = {Path(python).parent.parent, Path(os.path.realpath(python)).parent.parent}
    venv_cfg = Path(python).parent.parent / "pyvenv.cfg"
    with contextlib.suppress(OSError):
        for line in venv_cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                candidates.add(Path(value.strip()).parent)
    usr = Path("/usr")
    roots = [p for p in candidates if p != usr and usr not in p.parents]
    for root in roots:
        if not looks_like_python_root(root):
            raise BackendError(
                f"{root} does not look like a Python installation or virtual environment, so it is not "
                f"made visible in the sandbox (needed by the interpreter {python})",
                hint="point --python or the recipe's `python:` at a real interpreter",
            )
    return sorted(roots, key=lambda p: len(p.parts))


def looks_like_python_root(path: Path) -> bool:
    """A prefix (`lib/pythonX.Y/os.py`) or a venv (`pyvenv.cfg` and `lib/pythonX.Y/site-packages`), and not
    `/` or a home directory: a recipe must not be able to bind any directory by naming a fake interpreter."""
    if path in (Path("/"), Path("/root"), Path("/home")) or path.parent == Path("/home"):
        return False
    libs = list(path.glob("lib/python3*"))
    if (path / "pyvenv.cfg").is_file():
        return any((lib / "site-packages").is_dir() for lib in libs)
    return any((lib / "os.py").is_file() for lib in libs)


def is_host_root() -> bool:
    """True when sandrun is root of the host itself, not merely uid 0 inside a user namespace (rootless
    containers), where the sandbox already maps to an unprivileged host uid and no other uid can be used."""
    if os.geteuid() != 0:
        return False
    try:
        return Path("/proc/self/uid_map").read_text().split() == ["0", "0", "4294967295"]
    except OSError:
        return True


def fresh_uid() -> int:
    """An unprivileged host uid for one sandbox when sandrun is root: far above any real account's."""
    return 2_000_000_000 + secrets.randbelow(1 << 24)


def reachable_by_others(path: Path) -> bool:
    """True if a user who is neither owner nor in the group can reach `path` (every ancestor o+x, and the
    path itself too when it is a directory)."""
    try:
        folders = path.parents if not path.is_dir() else (path, *path.parents)
        return all(p.stat().st_mode & 0o001 for p in folders)
    except OSError:
        return False

"""What the local backend needs to know about the host: which directories an interpreter needs, whether
sandrun is really root, which uid a sandbox gets then, and the launcher that stages directories that uid
cannot reach.
"""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import select
import shutil
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sandrun.errors import BackendError

LAUNCH_TOOLS = ("unshare", "mount", "setpriv")
"""util-linux programs that stage unreachable directories when sandrun is root (on glibc distributions)."""


def launcher(
    binds: Sequence[tuple[str, str]], uid: int, argv: Sequence[str], cgroup_procs: str | None = None
) -> list[str]:
    """A command that, as root: enters the cgroup whose `cgroup.procs` is given (if any), a private mount
    namespace where it bind-mounts each unreachable source onto its reachable staging point (if any), drops
    to `uid` (no groups, no capabilities) and execs `argv` (bubblewrap).

    A few small C programs rather than a Python launcher: about 7 ms instead of 25 ms.
    """
    needed = LAUNCH_TOOLS if binds else ("setpriv",)
    tools = {name: shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin") for name in needed}
    missing = [name for name, found in tools.items() if not found]
    if missing:
        raise BackendError(
            f"running as root with an interpreter in a private directory needs {', '.join(missing)} "
            "(util-linux)",
            hint="install util-linux, or use an interpreter outside 0700 directories (--python)",
        )
    positional = [*([cgroup_procs] if cgroup_procs else []), *(part for pair in binds for part in pair)]
    steps = ['echo $$ > "$1"'] if cgroup_procs else []
    first = len(steps) + 1
    mount = tools.get("mount")
    steps += [f'{mount} --bind "${{{first + 2 * i}}}" "${{{first + 2 * i + 1}}}"' for i in range(len(binds))]
    setpriv = f"{tools['setpriv']} --reuid={uid} --regid={uid} --clear-groups"
    steps.append(f'shift {len(positional)} && exec {setpriv} -- "$@"')
    enter = [str(tools["unshare"]), "--mount", "--propagation", "private", "--"] if binds else []
    return [*enter, "/bin/sh", "-c", " && ".join(steps), "sandrun-launcher", *positional, *argv]


def has_setpriv() -> bool:
    """True if util-linux's setpriv is installed (root needs it to enter a cgroup, then drop privileges)."""
    return shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin") is not None


SYSTEM_PYTHON_PLACES = ("/usr", "/opt", "/bin", "/lib", "/lib64")
"""Where a symbolic link on an interpreter's path may lead, besides sandrun's own interpreter's prefixes
and the directory the link is in."""
NEVER_ROOTS = frozenset(
    [
        "/",
        "/root",
        "/home",
        "/etc",
        "/var",
        "/tmp",
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/boot",
        "/srv",
        "/mnt",
        "/media",
        "/opt",
        "/snap",
    ]
)
"""Directories that are never an interpreter's prefix: they hold far more than an interpreter."""
PYTHON_HINT = "point --python or the recipe's `python:` at a real interpreter"


def resolve_python(python: str) -> str:
    """An absolute, normalized path for `python` (a bare name is looked up on PATH), refused when a
    symbolic link on the way leads out of the directory it is in to anywhere but the system's Python
    locations (`rootlink -> /` must not make `rootlink/bin/python3` a way to bind the host's `/`)."""
    found = python if os.sep in python else shutil.which(python)
    if not found:
        raise BackendError(f"no interpreter named {python!r} on PATH", hint="give --python an absolute path")
    path = "/" + os.path.abspath(found).lstrip("/")  # `//bin` is `/bin` (POSIX keeps a leading `//`)
    check_links(path)
    return path


def check_links(path: str) -> None:
    """Raise BackendError if a component of `path` is a symbolic link leading outside both its own
    directory and the system's Python locations; the interpreter itself (the last component) may also link
    to an interpreter file of another Python installation (a venv made from any Python). `path` is absolute
    and normalized (no `..`), so the real path of each component is its real parent's plus its name unless
    it is a link: one look per component, not a walk from the root each time."""
    trusted = trusted_places()
    current = "/"  # the real path of the components seen so far
    parts = Path(path).parts[1:]
    for number, part in enumerate(parts, 1):
        link = os.path.join(current, part)
        if not os.path.islink(link):
            current = link
            continue
        target = os.path.realpath(link)
        inside = {current, *trusted}
        within = any(target == place or target.startswith(place.rstrip("/") + "/") for place in inside)
        interpreter = number == len(parts) and is_interpreter_of_an_installation(target)
        if not (within or interpreter):
            raise BackendError(
                f"the interpreter {path} is reached through the symbolic link {link} -> {target}, which "
                "leaves its directory for a place that is not a Python installation: it is not used",
                hint=PYTHON_HINT,
            )
        current = target


@functools.cache
def trusted_places() -> frozenset[str]:
    """Real paths of the system's Python locations and of sandrun's own interpreter's prefixes. Found once:
    they are the host's and sandrun's own, which no sandbox can write to (their binds are read-only)."""
    trusted = {os.path.realpath(p) for p in (*SYSTEM_PYTHON_PLACES, sys.prefix, sys.base_prefix)}
    trusted.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return frozenset(trusted)


def is_interpreter_of_an_installation(target: str) -> bool:
    """True for a regular file `bin/python*` of a directory that looks like a Python installation."""
    path = Path(target)
    return (
        path.name.startswith("python")
        and path.parent.name == "bin"
        and path.is_file()
        and looks_like_python_root(path.parent.parent)
    )


def python_roots(python: str) -> list[Path]:
    """Directories the interpreter needs: its prefix, the real one behind a venv's link, the venv's home.

    Each is checked by its real path (symbolic links resolved): never `/`, a system directory, a home
    directory or a directory holding one, and it must look like a Python installation."""
    python = resolve_python(python)
    candidates = {Path(python).parent.parent, Path(os.path.realpath(python)).parent.parent}
    home = venv_home(Path(python).parent.parent / "pyvenv.cfg")
    if home is not None:
        candidates.add(Path("/" + os.path.abspath(home).lstrip("/")).parent)
    usr = Path("/usr")
    roots = [p for p in candidates if p != usr and usr not in p.parents]
    for root in roots:
        real = Path(os.path.realpath(root))
        if real == usr or usr in real.parents:
            continue
        if not looks_like_python_root(real):
            raise BackendError(
                f"{root} does not look like a Python installation or virtual environment, so it is not "
                f"made visible in the sandbox (needed by the interpreter {python})",
                hint=PYTHON_HINT,
            )
    return sorted(roots, key=lambda p: len(p.parts))


def venv_home(cfg: Path) -> str | None:
    """The `home` of a venv's pyvenv.cfg, read without following a symbolic link; None if there is none."""
    try:
        fd = os.open(cfg, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        text = file.read(65536).decode(errors="replace")
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and os.path.isabs(value.strip()):
            return value.strip()
    return None


@functools.cache
def home_directories() -> frozenset[Path]:
    """Every account's home directory (real paths), and $HOME."""
    homes = {os.path.realpath(entry.pw_dir) for entry in pwd.getpwall() if entry.pw_dir}
    homes.add(os.path.realpath(os.path.expanduser("~")))
    return frozenset(Path(home) for home in homes if home != "/")


def holds_a_home(path: str) -> bool:
    """True if `path` (absolute and normalized) is a home directory or one of its ancestors; compared as
    strings, which costs far less than `Path.parents` at every sandbox start."""
    below = path.rstrip("/") + "/"
    return any(home == path or home.startswith(below) for home in map(str, home_directories()))


def looks_like_python_root(path: Path) -> bool:
    """A prefix (`lib/pythonX.Y/os.py`) or a venv (`pyvenv.cfg` and `lib/pythonX.Y/site-packages`), and not
    `/`, a system directory, a home directory or one holding a home: a recipe must not be able to bind any
    directory by naming a fake interpreter. `path` is checked as given: pass a real path."""
    if str(path) in NEVER_ROOTS or path.parent == Path("/home"):
        return False
    if holds_a_home(str(path)):
        return False
    try:  # what `path.glob("lib/python3*")` finds, with a fraction of its system calls
        libs = [path / "lib" / name for name in os.listdir(path / "lib") if name.startswith("python3")]
    except OSError:
        return False
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


def watch_children(pid: int) -> list[int]:
    """pidfds of the children of `pid` (bubblewrap's: the sandbox's first process), to wait for their end;
    empty where that cannot be done (`pid` gone, no /proc children list, no pidfd_open)."""
    try:
        listing = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    fds = []
    for child in listing:
        try:
            fds.append(os.pidfd_open(int(child)))
        except (AttributeError, OSError):
            for fd in fds:
                os.close(fd)
            return []
    return fds


def all_ended(pidfds: list[int], seconds: float) -> bool:
    """Wait until every process behind `pidfds` has ended; False if one still runs after `seconds`."""
    deadline = time.monotonic() + seconds
    waiting = list(pidfds)
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select(waiting, [], [], left)
        waiting = [fd for fd in waiting if fd not in ready]
    return True

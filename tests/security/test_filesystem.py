"""Promise 2: the filesystem. Only the work directory and /tmp are writable, both size-limited; the host's
files (the user's home, this project, /etc/shadow, other users' files, a private temp dir) are not visible.

Controls: /tmp and the work directory are writable up to the limit, and the `process` backend (which isolates
nothing) does see the host files the sandbox must not see, so the probes can fail.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import Limits, SandboxOptions
from sandrun.session import Session
from tests.security.sandboxes import REPO, StartSandbox, local_unavailable, run, value

DISK = 4 << 20
"""The size limit of /tmp and the work directory in these sandboxes: small, so that filling them is fast."""

HELPERS = """
import errno, os, sys
WORK = os.getcwd()  # the work directory: where the driver starts

def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))

def try_write(directory):
    path = os.path.join(directory, ".sandrun-write-probe")
    try:
        with open(path, "x") as f:
            f.write("x")
    except OSError as e:
        return name(e)
    os.unlink(path)
    return "written"

def fill(path, most):
    written, error, chunk = 0, None, b"\\1" * (1 << 20)
    try:
        with open(path, "wb", buffering=0) as f:
            while written < most:
                written += f.write(chunk)
    except OSError as e:
        error = name(e)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return written, error

def visible(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return "read"
    except OSError as e:
        return name(e)

def writable_dirs():
    found = []
    for top, dirs, _ in os.walk("/"):
        if top in ("/proc", "/tmp", WORK) or os.statvfs(top).f_flag & os.ST_RDONLY:
            dirs[:] = []
            continue
        if try_write(top) == "written":
            found.append(top)
    return sorted(found)
"""


@pytest.fixture(scope="module")
def shared() -> Iterator[Session]:
    """One sandbox for the probes that do not change it; /tmp and the work directory hold `DISK` bytes."""
    if reason := local_unavailable():
        pytest.skip(f"the local backend is unavailable: {reason}")
    live = Session.start(get_backend("local"), SandboxOptions(limits=Limits(disk=DISK)))
    assert run(live, HELPERS).status == "ok"
    yield live
    live.close()


@pytest.mark.parametrize("directory", ["'/tmp'", "WORK"])
def test_control_work_dir_and_tmp_are_writable(shared: Session, directory: str) -> None:
    assert value(run(shared, f"try_write({directory})")) == "written"


@pytest.mark.parametrize("directory", ["/usr", "/usr/lib", "/bin", "PREFIX", "BASE_PREFIX"])
def test_system_and_interpreter_are_read_only(shared: Session, directory: str) -> None:
    target = {"PREFIX": "sys.prefix", "BASE_PREFIX": "sys.base_prefix"}.get(directory, repr(directory))
    assert value(run(shared, f"try_write({target})")) in ("EROFS", "EACCES")


def test_nothing_but_work_dir_and_tmp_is_writable(shared: Session) -> None:
    writable = value(run(shared, "writable_dirs()"))
    assert writable == [], f"writable outside /tmp and the work directory: {writable}"


@pytest.mark.parametrize("directory", ["'/tmp'", "WORK"])
def test_filling_tmp_and_work_stops_at_the_limit(shared: Session, directory: str) -> None:
    written, error = value(run(shared, f"fill({directory} + '/filler', {4 * DISK})"))
    assert error == "ENOSPC"
    assert written <= DISK


@pytest.mark.parametrize("directory", ["/", "/dev/shm"])
def test_filling_any_other_place_stops_at_the_limit(shared: Session, directory: str) -> None:
    written, error = value(run(shared, f"fill({directory.rstrip('/')!r} + '/filler', {4 * DISK})"))
    assert error in ("ENOSPC", "EROFS", "EACCES", "EPERM")
    assert written <= DISK


BOUND = [Path(p) for p in (sys.prefix, sys.base_prefix, Path(os.path.realpath(sys.executable)).parents[1])]
"""The interpreter's directories, which every sandbox of these tests binds read-only (at their host paths)."""


def unbound_entries(top: Path) -> list[Path]:
    """What is in `top` that no sandbox may see: every entry, except a bound interpreter directory; an entry
    that holds one (the venv under a user's home or /opt) exists inside, so its entries are listed instead.
    """
    found = []
    with contextlib.suppress(PermissionError):  # another user's home: its entries are not ours to list
        for entry in top.iterdir():
            if any(entry in root.parents for root in BOUND) and entry.is_dir() and not entry.is_symlink():
                found += unbound_entries(entry)
            elif entry not in BOUND:
                found.append(entry)
    return found


def host_secrets(tmp_path: Path) -> list[str]:
    """Host paths the sandbox must not see: home entries, this project, shadow files, private temp files."""
    home_entries = unbound_entries(Path.home())
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "note.txt").write_text("private\n")
    (private / "note.txt").chmod(0o644)
    with tempfile.NamedTemporaryFile("w", prefix="sandrun-visible-", delete=False) as public:
        public.write("world-readable file in the host's /tmp\n")  # mode 0600 by default: open it up
    os.chmod(public.name, 0o644)
    paths = [
        *map(str, home_entries),
        str(REPO / "pyproject.toml"),
        str(REPO / "cli" / "sandrun" / "session.py"),
        str(private / "note.txt"),
        public.name,
    ]
    return paths


def test_host_files_are_invisible(sandbox: StartSandbox, tmp_path: Path) -> None:
    paths = host_secrets(tmp_path)
    try:
        probe = f"import os\n{{path: os.path.lexists(path) for path in {paths!r}}}"
        seen = value(run(sandbox(), probe))
        assert [path for path, exists in seen.items() if exists] == []
        # Control: the process backend isolates nothing and sees every one of them.
        control = value(run(sandbox(backend="process"), probe))
        assert [path for path, exists in control.items() if not exists] == []
    finally:
        os.unlink(paths[-1])


def test_shadow_and_other_users_are_invisible(sandbox: StartSandbox) -> None:
    """No shadow files; no host account, home directory or system data directory shows through."""
    others = [
        str(entry)
        for top in ("/home", "/var", "/srv", "/opt", "/mnt", "/media", "/run")
        if os.path.isdir(top)
        for entry in unbound_entries(Path(top))
    ]
    assert others, "nothing to look for: the probe would prove nothing"
    probe = HELPERS + (
        f"({{p: visible(p) for p in ['/etc/shadow', '/etc/gshadow', '/etc/sudoers']}}, "
        f"{{p: os.path.lexists(p) for p in {others!r} if not WORK.startswith(p)}}, "
        "open('/etc/passwd').read())"
    )
    shadow, seen, passwd = value(run(sandbox(), probe))
    assert set(shadow.values()) <= {"ENOENT", "EACCES"}, shadow
    assert [path for path, exists in seen.items() if exists] == []
    users = {line.split(":")[0] for line in passwd.splitlines() if line}
    assert users == {"sandbox"}

"""File operations on paths that a recipe or a sandbox controls, which never follow a symbolic link out.

A recipe names files next to it (`files:`); a sandbox with `--workdir` leaves whatever it likes in that host
directory for the next run (a link `payload.sh -> /root/.bashrc`, a subdirectory replaced by a link to `/`);
`--update` rewrites a recipe that may be a link. Every operation here starts from a directory the user chose
(opened once, as the user named it) and goes down one component at a time with `openat` and `O_NOFOLLOW`
from the directory fd it holds, so no path string is resolved twice and no link is followed below it.
Linux and the BSDs; the `*at` calls are what `os` exposes as `dir_fd=`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

StrPath = str | os.PathLike[str]
"""A path as the callers hold it."""
DIRECTORY = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
"""Flags of a held directory: O_PATH where there is one, so a directory one may enter but not list works."""
READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
"""Flags to open a file for reading below a held directory (no blocking on a FIFO planted there)."""


class LinkRefused(OSError):
    """A symbolic link (or a non-directory where a directory must be) where sandrun does not follow one."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(errno.ELOOP, why, path)


def owned_by_user_or_root(uid: int) -> bool:
    """Whether a file of `uid`, found in a directory above where the user is (a project's pyproject.toml,
    a Sphinx conf.py), may be taken as theirs: git's rule for a repository another user owns."""
    return uid in (os.getuid(), 0)


def parts_of(relative: StrPath) -> tuple[str, ...]:
    """The components of a relative path; ValueError for an absolute path, `..`, or an empty one."""
    path = PurePosixPath(os.fspath(relative))
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise ValueError(f"{os.fspath(relative)!r} is not a relative path below a directory")
    return path.parts


def open_directory(path: StrPath) -> int:
    """Hold the directory the user chose (links in `path` itself are followed: that is the user's choice)."""
    return os.open(path, DIRECTORY)


def enter(directory: int, parts: tuple[str, ...], create: bool = False) -> int:
    """A new fd of the directory `parts` below the held `directory`, never through a link; with `create`,
    missing directories are made (0777 less the umask). The caller closes the fd."""
    current = os.dup(directory)
    try:
        for depth, name in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=current)
            try:
                step = os.open(name, DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
            except OSError as exc:
                raise refusal(current, name, "/".join(parts[: depth + 1]), exc) from None
            os.close(current)
            current = step
    except BaseException:
        os.close(current)
        raise
    return current


def refusal(directory: int, name: str, shown: str, exc: OSError) -> OSError:
    """The error for `name` that could not be opened: `LinkRefused` when it is a link or not a directory."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return exc
    try:
        is_link = stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return exc
    why = f"{shown} is a symbolic link, which is not followed" if is_link else f"{shown}: {exc.strerror}"
    return LinkRefused(shown, why)


def open_file(directory: int, relative: StrPath) -> int:
    """Open `relative` below the held `directory` for reading; a link at any component is refused."""
    parts = parts_of(relative)
    parent = enter(directory, parts[:-1])
    try:
        return os.open(parts[-1], READ, dir_fd=parent)
    except OSError as exc:
        raise refusal(parent, parts[-1], "/".join(parts), exc) from None
    finally:
        os.close(parent)


def real_parts(root: StrPath, relative: StrPath) -> tuple[str, ...]:
    """Where `relative` below `root` really is, as components below `root`'s real path: links are resolved
    once, here; `LinkRefused` if that leaves `root`. Open the result with `open_file` from `root`'s real path,
    so that a link swapped in afterwards is refused rather than followed."""
    base = Path(os.path.realpath(root))
    real = Path(os.path.realpath(Path(root, *parts_of(relative))))
    if not real.is_relative_to(base) or real == base:
        shown = os.fspath(Path(root, relative))
        raise LinkRefused(shown, f"{shown} is a symbolic link, or lies behind one, that leads out of {root}")
    return real.relative_to(base).parts


@contextlib.contextmanager
def real_directory_of(root: StrPath, relative: StrPath) -> Iterator[tuple[int, str]]:
    """The held directory where `relative` below `root` really is, and the file's name in it: links are
    resolved once (`real_parts`), and one leading out of `root` is refused; the fd is closed on exit."""
    parts = real_parts(root, relative)
    top = open_directory(os.path.realpath(root))
    try:
        parent = enter(top, parts[:-1])
    finally:
        os.close(top)
    try:
        yield parent, parts[-1]
    finally:
        os.close(parent)


def open_below(root: StrPath, relative: StrPath) -> int:
    """Open `relative` below `root` for reading: links that stay inside `root` are followed (resolved once),
    a link that leads out of it is refused."""
    with real_directory_of(root, relative) as (directory, name):
        return open_file(directory, name)


def replace(directory: int, name: str, write: Callable[[int], None], keep_mode: bool = False) -> None:
    """Make `name` in the held `directory` a new file whose content `write(fd)` writes, atomically: it goes
    to a fresh temporary name (O_EXCL, O_NOFOLLOW) and is renamed over `name`, so whatever was at `name`
    (a link, a hard link, a file) is replaced, never written through. The new file has 0666 less the
    umask, or with `keep_mode` the permission bits (not set-id bits) of the regular file it replaces."""
    mode = None
    if keep_mode:
        with contextlib.suppress(OSError):
            old = os.stat(name, dir_fd=directory, follow_symlinks=False)
            mode = stat.S_IMODE(old.st_mode) & 0o777 if stat.S_ISREG(old.st_mode) else None
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:  # the open too: an interrupt landing just after it must not leave the file behind
        fd = os.open(temp, flags, 0o666, dir_fd=directory)
        try:
            write(fd)
            os.fsync(fd)
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=directory)
        raise


def copy_in(directory: int, relative: StrPath, source: int) -> None:
    """Copy what the readable fd `source` holds to `relative` below the held `directory`: missing
    directories are made, a link among them is refused, and what is at the file's own name is replaced."""
    parts = parts_of(relative)
    parent = enter(directory, parts[:-1], create=True)
    try:
        replace(parent, parts[-1], lambda fd: copy_fd(source, fd))
    finally:
        os.close(parent)


def copy_fd(source: int, target: int) -> None:
    """All of `source` (from where it stands) to `target`."""
    while chunk := os.read(source, 1 << 20):
        write_all(target, chunk)


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd`, however many writes that takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def walk(root: StrPath) -> Iterator[tuple[int, str]]:
    """Every entry below the directory `root` as (held fd of its directory, name), without ever following
    a link (`os.fwalk`, which checks each directory it enters is the one it listed). The fds are valid
    until the next step."""
    for _folder, dirs, files, folder_fd in os.fwalk(os.path.realpath(root), follow_symlinks=False):
        for name in dirs + files:
            yield folder_fd, name

"""A memory cgroup for one local sandbox, so that `--memory` bounds everything it can pin, in total.

`RLIMIT_AS` (set by the driver) gives a cell a clean `MemoryError`, but it counts one process's address space
only: memory behind a file descriptor (`memfd_create`, SysV shared memory) or spread over many processes
escapes it. A cgroup's memory controller counts all of it, for every process of the sandbox; at the limit the
kernel reclaims, then kills a process of the sandbox.

Where one is usable:
- cgroup v2, where sandrun may create a cgroup beside its own, in a parent whose `cgroup.subtree_control`
  enables `memory` and whose `cgroup.procs` it may write (a delegated subtree, e.g. under a systemd user
  session; or the root cgroup when sandrun is in it);
- cgroup v1, inside sandrun's own cgroup of the memory hierarchy when it is writable (as root, typically).
Elsewhere `create` returns None and the local backend refuses, in its seccomp filter, what it cannot count.

The sandbox enters its cgroup before bubblewrap starts: a shell writes its own pid into `cgroup.procs`
and execs the rest (as root, then drops to the sandbox's uid), so nothing of the sandbox ever runs outside.
A cgroup is removed with its sandbox; one left empty by a sandrun that was killed is removed by a later run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

REMOVE_WAIT = 2.0
"""Seconds to wait for the last processes of a killed sandbox to leave its cgroup before removing it."""
STALE_AFTER = 600.0
"""Seconds after which an empty sandbox cgroup is taken for one that a killed sandrun left behind."""


@dataclass(frozen=True)
class Parent:
    """A cgroup under which sandrun may create sandboxes' cgroups."""

    path: Path
    version: int


@dataclass(frozen=True)
class MemoryCgroup:
    """One sandbox's cgroup, with its memory limit set."""

    path: Path
    version: int

    @property
    def procs(self) -> str:
        """The file a process writes its pid into to enter the cgroup."""
        return str(self.path / "cgroup.procs")

    def oom_kills(self) -> int:
        """How many processes the kernel killed for reaching the limit (0 once the cgroup is gone)."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / name).read_text().splitlines():
                key, _, count = line.partition(" ")
                if key == "oom_kill":
                    return int(count)
        return 0

    def remove(self) -> None:
        """Remove the cgroup once its processes are gone (they die asynchronously after a kill)."""
        deadline = time.monotonic() + REMOVE_WAIT
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() >= deadline:
                    return  # an empty cgroup left behind is harmless; never hang the host on it
                time.sleep(0.005)


def create(limit: int, name: str) -> MemoryCgroup | None:
    """A new cgroup `name` limited to `limit` bytes of memory (and no swap), or None where none is usable."""
    parent = usable_parent()
    if parent is None:
        return None
    sweep_stale_once(parent.path)
    path = parent.path / name
    if parent.version == 2:
        settings = [("memory.max", True), ("memory.swap.max", False)]
    else:  # v1: memsw (memory plus swap) exists only with swap accounting, and must not be below the limit
        settings = [("memory.limit_in_bytes", True), ("memory.memsw.limit_in_bytes", False)]
    try:
        path.mkdir(mode=0o755)
    except OSError:
        return None
    cgroup = MemoryCgroup(path, parent.version)
    for setting, required in settings:
        try:
            (path / setting).write_text(str(limit if setting != "memory.swap.max" else 0))
        except OSError:
            if required:
                cgroup.remove()
                return None
    return cgroup


@functools.cache
def sweep_stale_once(parent: Path) -> None:
    """`sweep_stale`, at the first sandbox of this process: what this process creates, it removes itself."""
    sweep_stale(parent)


def sweep_stale(parent: Path, older_than: float = STALE_AFTER) -> None:
    """Remove sandbox cgroups that a sandrun killed without its cleanup left behind: old ones only (a new
    one may belong to a run that has not entered it yet), and only empty ones (rmdir refuses the others)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for old in parent.glob("sandrun-*"):
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > older_than:
                    old.rmdir()


@functools.cache
def usable_parent() -> Parent | None:
    """Where this process may create memory cgroups (looked up once per process), or None."""
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    return find_parent(own, mounts)


def find_parent(own: list[str], mounts: list[str]) -> Parent | None:
    """The usable parent, from the lines of /proc/self/cgroup (`own`) and /proc/self/mountinfo (`mounts`)."""
    for line in own:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            parent = v2_parent(mounts, path)
        elif "memory" in controllers.split(","):
            parent = v1_parent(mounts, path)
        else:
            continue
        if parent is not None:
            return parent
    return None


def mount_point(mounts: list[str], fstype: str, option: str | None) -> Path | None:
    """Where a cgroup filesystem of `fstype` (with the super option `option`, for v1) is mounted."""
    for line in mounts:
        fields = line.split()
        separator = fields.index("-")
        kind, options = fields[separator + 1], fields[separator + 3].split(",")
        if kind == fstype and (option is None or option in options) and fields[3] == "/":
            return Path(fields[4])
    return None


def v2_parent(mounts: list[str], path: str) -> Parent | None:
    """cgroup v2: the root cgroup if sandrun is in it, else the parent of sandrun's own cgroup (a cgroup
    with processes cannot have children with controllers); it must enable `memory` for its children and
    let sandrun move processes (write its `cgroup.procs`, the common ancestor's)."""
    root = mount_point(mounts, "cgroup2", None)
    if root is None:
        return None
    own = root / path.lstrip("/")
    candidate = own if own == root else own.parent
    try:
        enabled = (candidate / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    if "memory" not in enabled or not writable(candidate) or not writable(candidate / "cgroup.procs"):
        return None
    return Parent(candidate, 2)


def v1_parent(mounts: list[str], path: str) -> Parent | None:
    """cgroup v1: sandrun's own cgroup of the memory hierarchy, if sandrun may create cgroups in it."""
    root = mount_point(mounts, "cgroup", "memory")
    if root is None:
        return None
    own = root / path.lstrip("/")
    return Parent(own, 1) if writable(own) and writable(own / "cgroup.procs") else None


def writable(path: Path) -> bool:
    """True if this process may write `path` (a cgroup directory: create in it; a file: write it)."""
    with contextlib.suppress(OSError):
        return os.access(path, os.W_OK)
    return False


def enter_command(procs: str, argv: list[str]) -> list[str]:
    """`argv`, run by a shell that first moves itself into the cgroup whose `cgroup.procs` is `procs`."""
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, *argv]

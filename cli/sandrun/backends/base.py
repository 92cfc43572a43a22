"""The contract every backend fulfils: start one process in a sandbox, hand back a byte channel to it.

A backend knows nothing of cells, JSON or reports. The session (`sandrun.session`) speaks the driver protocol
over the channel, identically for every backend. Failures are mapped at this boundary to `BackendError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sandrun.model import NO_ISOLATION


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandbox; None means no limit of that kind."""

    memory: int | None = 4 << 30
    """Bytes of address space for each process (a memory bomb gets MemoryError), and of memory for the whole
    sandbox where the backend can count it (the local backend's cgroup)."""
    cpu_time: int | None = 900
    """CPU seconds for each process; the interpreter is killed when its budget runs out."""
    max_procs: int | None = 256
    """Processes and threads the sandbox may have at once (set inside the sandbox's user namespace)."""
    disk: int | None = 1 << 30
    """Bytes each writable place (the private /tmp, the default work directory) may hold."""

    cpu: float | None = None
    """CPU cores to reserve, for backends that reserve them (Modal)."""

    def as_dict(self) -> dict[str, float | None]:
        """The limits by name, for transcripts."""
        return {name: getattr(self, name) for name in ("memory", "cpu_time", "max_procs", "disk", "cpu")}


@dataclass(frozen=True)
class Mounts:
    """Host paths a sandbox sees at the same path, beyond the interpreter: what a package build needs."""

    read_only: tuple[Path, ...] = ()
    """Files and directories bound read-only (a base interpreter, pip's configuration, a local package)."""
    writable: Path | None = None
    """The one host directory the sandbox may write (the environment being built); None: none."""
    proxy_socket: Path | None = None
    """A host unix socket (the package index proxy), its directory bound read-only. The sandbox may then
    open internet sockets too, which still reach only its own loopback: it has no host network."""


@dataclass(frozen=True)
class SandboxOptions:
    """What the sandbox must look like; every backend honours what it can and records the rest."""

    env: Mapping[str, str] = field(default_factory=dict)
    """Variables visible inside, on top of the backend's minimal PATH/HOME/LANG."""
    python: str | None = None
    """Interpreter to run inside; None means the backend's default."""
    workdir: Path | None = None
    """Host directory to work in; None means a fresh temporary one, removed at the end."""
    files: Mapping[str, Path] = field(default_factory=dict)
    """Files copied into the work directory before the run: name inside -> host path."""
    files_from: Path | None = None
    """The directory `files` are taken from (the recipe's): a link below it that leads out of it is refused.
    None: each file's own directory (only the file itself must not be a link)."""
    packages: tuple[str, ...] = ()
    """pip requirements for backends that build their own image (`Backend.installs_packages`)."""
    network: bool = False
    """Whether cells may reach the network (backends that cannot cut it off say so in their isolation)."""
    limits: Limits = field(default_factory=Limits)
    mounts: Mounts = field(default_factory=Mounts)
    """Extra host paths (local backend only; sandrun's own package builds use them, recipes cannot)."""


class Channel(Protocol):
    """A running process inside a sandbox, seen as bytes in and bytes out."""

    def send(self, data: bytes, timeout: float) -> bool:
        """Write all of `data` to the process's stdin within `timeout` seconds.

        True once all of it is written; False if the process did not take it in time (it stopped reading:
        the caller gives the sandbox up). Raises `BackendError` if the process is gone. Never waits longer.
        """

    def receive(self, timeout: float | None) -> bytes | None:
        """The next chunk of the process's stdout: b"" once closed, None if nothing came in `timeout`."""

    def close(self) -> None:
        """End the process and everything it started, and release the sandbox. Safe to call twice."""

    def kill(self) -> None:
        """Kill the sandbox's processes now, from any thread; the owner still calls `close` afterwards."""

    @property
    def returncode(self) -> int | None:
        """Exit status once the process ended (negative: killed by that signal), else None."""

    def diagnostics(self) -> str:
        """What the sandbox itself said on its stderr (the tail), to explain a failure to start or a crash."""


class Backend(Protocol):
    """A kind of sandbox. Instances are cheap; `start` does the work."""

    name: str
    isolation: str
    """What it isolates, in a few words (`NO_ISOLATION`, `bubblewrap: namespaces, seccomp, rlimits`,
    `gvisor`)."""
    installs_packages: bool
    """True if it installs a recipe's `packages` itself (in an image); else sandrun builds a local venv."""

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here (with what to do about it), or None if it can."""

    def versions(self) -> dict[str, str]:
        """Versions of what the backend relies on (bubblewrap, the modal client), for `sandrun backends`."""

    def driver_limits(self, options: SandboxOptions) -> dict[str, int]:
        """Resource limits the driver must set on itself first thing (`RLIMIT_*` name -> value).

        Some limits only work when set from inside the sandbox (the process count is per user namespace).
        """

    def default_python(self) -> str:
        """The interpreter used inside when the recipe and the command line name none."""

    def start(self, argv: Sequence[str], options: SandboxOptions) -> Channel:
        """Start `argv` inside a new sandbox. Raises `BackendError` saying why it could not."""


def isolates_nothing(backend: Backend) -> bool:
    """Whether `backend` runs cells with the user's own permissions (the `process` backend)."""
    return backend.isolation == NO_ISOLATION

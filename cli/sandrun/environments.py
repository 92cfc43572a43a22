"""Virtual environments for a recipe's `packages:`, built in a sandbox, cached, run in the sandbox.

Built once per (normalized package list, base interpreter), cached in `<cache_dir>/envs/<key>/`.
- `python -m venv --without-pip` (0.06 s), then sandrun's own pip installs with `pip --python <env>`.
  A venv with pip (ensurepip) costs 5 s more; it is only made when sandrun's pip cannot serve.
- With the `local` backend both steps run inside a sandbox (`sandrun.sandboxed_build`): nothing a package
  names (a `setup.py`, a build backend) runs on the host, and a recipe's `python:` is asked its version
  there too. Without one (the `process` backend, which isolates nothing) they run on the host.
- Built in place under an `fcntl.flock` lock per key; complete once `sandrun-env.json` exists (written last,
  atomically). Not built elsewhere and renamed: a renamed venv still imports its packages, but its console
  scripts (`bin/*`, first on the sandbox's PATH) keep the old path in their shebang. A directory without
  the marker is a killed build; the next build of that key removes it.
- Steps run with umask 022 (the sandbox's unprivileged uid must read everything when sandrun is root) and
  in their own process group (a timeout kills pip and whatever pip started).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT
from typing import TYPE_CHECKING

from sandrun.durations import format_duration
from sandrun.errors import BackendError

if TYPE_CHECKING:
    from sandrun.backends.local import LocalBackend

MARKER = "sandrun-env.json"
"""Written last into an environment: an environment is complete exactly when this file exists."""
BUILD_TIMEOUT = 600.0
"""Seconds a whole build (venv, pip install) may take."""
PIP_HINT = "check the requirement strings; the environment is built with network access from this machine"
SANDBOX_HINT = (
    "check the requirement strings; the build runs in a sandbox that reaches only the package indexes of "
    "your pip configuration, and sees no local files but the packages and what that configuration names"
)
PIP_ARGS = ("install", "--disable-pip-version-check", "--no-input", "-q")
DESCRIBE = (
    "{'implementation': sys.implementation.name, 'version': sys.version.split()[0], "
    "'base_prefix': os.path.realpath(sys.base_prefix)}"
)
"""What an environment depends on in its base interpreter, as an expression that interpreter evaluates."""


class EnvironmentBuildError(BackendError):
    """An environment for a recipe's packages could not be built (pip failed, timeout, bad interpreter).
    `packages` are the requirements asked for, `output` the tail of what pip said (also in the message)."""

    def __init__(
        self, message: str, hint: str | None = None, packages: Sequence[str] = (), output: str = ""
    ) -> None:
        super().__init__(message, hint)
        self.packages = tuple(packages)
        self.output = output


@dataclass(frozen=True)
class EnvironmentSpec:
    """What an environment holds: pip requirement strings, installed into a venv of a base interpreter."""

    packages: tuple[str, ...]
    python: str
    """The base interpreter, an absolute path (a venv's interpreter is fine: venv uses its base)."""

    @property
    def requirements(self) -> tuple[str, ...]:
        """The packages stripped, without blanks or duplicates, sorted: the same set gives the same env."""
        return tuple(sorted({p.strip() for p in self.packages if p.strip()}))


def interpreter_info(python: str, sandbox: LocalBackend | None = None) -> dict[str, str]:
    """Implementation, full version and real base prefix of `python`: found by running it (once per
    process) in `sandbox` (on the host without one), or without running anything when it is sandrun's own
    interpreter."""
    if python == sys.executable:
        described: dict[str, str] = eval(DESCRIBE)  # what the probe prints: identical keys either way
        return described
    return _probe(python, sandbox)


@functools.cache
def _probe(python: str, sandbox: LocalBackend | None) -> dict[str, str]:
    probe = f"import json, os, sys; print(json.dumps({DESCRIBE}))"
    try:
        if sandbox is not None:
            from sandrun.sandboxed_build import run_probe

            status, out = run_probe(sandbox, [python, "-I", "-c", probe])
        else:
            done = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
            status, out = done.returncode, done.stdout
        info = json.loads(out) if status == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        info = None
    if not isinstance(info, dict):
        raise EnvironmentBuildError(
            f"cannot run the interpreter {python} to build the recipe's environment",
            hint="point --python or the recipe's `python:` at a working interpreter",
        )
    return info


def environment_key(spec: EnvironmentSpec, sandbox: LocalBackend | None = None) -> str:
    """A stable name for the environment: the interpreter's major.minor, then a hash of the normalized
    packages and the interpreter's implementation, full version and base prefix (where `bin/python`
    points: two installations of one version must not share an environment)."""
    info = interpreter_info(spec.python, sandbox)
    identity = json.dumps([spec.requirements, info], sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    short = ".".join(info["version"].split(".")[:2])
    return f"{info['implementation']}{short}-{digest}"


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """`$SANDRUN_CACHE_DIR`, else `$XDG_CACHE_HOME/sandrun` (if absolute), else `~/.cache/sandrun`."""
    if env.get("SANDRUN_CACHE_DIR"):
        return Path(env["SANDRUN_CACHE_DIR"])
    xdg = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "sandrun"
    home = env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(home) / ".cache" / "sandrun"


def ensure_environment(
    spec: EnvironmentSpec,
    cache_dir: Path,
    log: Callable[[str], None] | None = None,
    timeout: float = BUILD_TIMEOUT,
    sandbox: LocalBackend | None = None,
) -> str:
    """The interpreter of the environment for `spec`, built first unless a complete one is cached.

    The build runs in `sandbox`; None (for the `process` backend, which isolates nothing) runs it on the
    host. Safe to call from several threads and processes at once: one builds, the others wait and reuse it.
    Raises `EnvironmentBuildError` (a `BackendError`) with pip's message when the build fails; nothing of
    the failed build is left behind.
    """
    say = log or (lambda _message: None)
    envs = Path(os.path.abspath(cache_dir)) / "envs"
    envs.mkdir(parents=True, exist_ok=True)  # its mode does not matter: see `SandboxPlan.reachable`
    target = envs / environment_key(spec, sandbox)
    python = str(target / "bin" / "python")
    if is_complete(target):
        return python
    with locked(envs / f"{target.name}.lock", say):
        if is_complete(target):
            say(f"reusing the environment {target}, built meanwhile by another sandrun")
            return python
        shutil.rmtree(target, ignore_errors=True)  # what a killed build left
        started = time.monotonic()
        say(f"building an environment for {', '.join(spec.requirements) or 'no packages'} in {target}")
        try:
            Builder(spec, target, timeout, sandbox).build()
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        say(f"environment ready in {format_duration(time.monotonic() - started)}")
    return python


def is_complete(target: Path) -> bool:
    """True if `target` holds a finished environment whose base interpreter still exists."""
    return (target / MARKER).is_file() and (target / "bin" / "python").exists()


@contextlib.contextmanager
def locked(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (released by the kernel if this process dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another sandrun that is building the same environment")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_marker(target: Path, text: str) -> None:
    """Write `text` as the marker, last, atomically, through no symbolic link a build may have planted:
    relative to a descriptor of `target` itself, with O_NOFOLLOW and O_EXCL."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    folder = os.open(target, flags)
    partial = f"{MARKER}.partial"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial, dir_fd=folder)
        fd = os.open(
            partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder
        )
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o644)
            file.write(text)
        os.replace(partial, MARKER, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        os.close(folder)


def host_pip(version: str) -> list[str] | None:
    """sandrun's own pip, if it can install into an interpreter of `version` with `--python`: pip 22.3+,
    and a Python no newer than sandrun's (an older pip may not know a newer Python)."""
    import importlib.metadata  # costs 70 ms: only when building

    try:
        pip_version = tuple(map(int, importlib.metadata.version("pip").split(".")[:2]))
        usable = pip_version >= (22, 3) and tuple(map(int, version.split(".")[:2])) <= sys.version_info[:2]
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    return [sys.executable, "-m", "pip"] if usable else None


class Builder:
    """One build of one environment, within one time budget."""

    def __init__(
        self, spec: EnvironmentSpec, target: Path, timeout: float, sandbox: LocalBackend | None = None
    ) -> None:
        self.spec = spec
        self.target = target
        self.timeout = timeout
        self.sandbox = sandbox
        self.deadline = time.monotonic() + timeout

    def build(self) -> None:
        """Create the venv at `target`, install the packages, write the marker last."""
        info = interpreter_info(self.spec.python, self.sandbox)
        packages = self.spec.requirements
        pip = host_pip(info["version"])
        if self.sandbox is not None:
            from sandrun.sandboxed_build import build_in_sandbox

            installed = build_in_sandbox(self, self.sandbox, pip is not None)
        else:
            installed = self.build_on_host(pip)
        record = {
            "packages": list(packages),
            "python": self.spec.python,
            "implementation": info["implementation"],
            "python_version": info["version"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "installed": installed,
        }
        write_marker(self.target, json.dumps(record, indent=2) + "\n")

    def build_on_host(self, pip: list[str] | None) -> list[str]:
        """Both steps as host processes (the `process` backend): what got installed."""
        import importlib.metadata

        packages = self.spec.requirements
        python = str(self.target / "bin" / "python")
        venv = [self.spec.python, "-I", "-m", "venv", *(["--without-pip"] if pip else []), str(self.target)]
        self.run(venv, "creating the virtual environment")
        if packages:
            pip_command = [*pip, "--python", python] if pip else [python, "-m", "pip"]
            self.run([*pip_command, *PIP_ARGS, *packages], f"installing {', '.join(packages)}", PIP_HINT)
        site = [str(path) for path in self.target.glob("lib/*/site-packages")]
        dists = importlib.metadata.distributions(path=site)
        return sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in dists)

    def run(self, argv: Sequence[str], what: str, hint: str | None = None) -> None:
        """Run one step before the deadline; EnvironmentBuildError with the tail of its output if it fails."""
        packages = self.spec.requirements
        try:
            proc = subprocess.Popen(
                argv, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT, umask=0o022, start_new_session=True
            )
        except OSError as exc:
            raise EnvironmentBuildError(f"{what} failed: cannot run {argv[0]}: {exc.strerror}") from None
        try:
            output = proc.communicate(timeout=max(self.deadline - time.monotonic(), 0.001))[0]
        except subprocess.TimeoutExpired:
            raise EnvironmentBuildError(
                f"building the environment for {', '.join(packages) or 'the recipe'} took longer than "
                f"{self.timeout:g} s (while {what})",
                hint="check the network, and whether the packages are unusually large to download or build",
                packages=packages,
            ) from None
        finally:
            if proc.returncode is None:  # timed out or interrupted: end pip and everything it started
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        if proc.returncode != 0:
            tail = "\n".join(output.decode(errors="replace").strip().splitlines()[-20:])
            raise EnvironmentBuildError(
                f"{what} failed (exit status {proc.returncode}):\n{tail}", hint, packages, output=tail
            )

"""Building a package environment inside a `local` sandbox, and asking an interpreter its version there.

The build sandbox is a normal cell sandbox (no host network, no capabilities, seccomp, a fresh uid when
sandrun is root) plus, through `SandboxOptions.mounts`: the environment directory as its only writable
host path (at its own path: venv scripts carry absolute shebangs), read-only binds of the base interpreter,
sandrun's pip, local packages and what the user's pip configuration names, and the unix socket of the
index proxy (`sandrun.backends.index_proxy`), its only way out. What runs inside is `sandrun.build_inside`.
The host only reads what that program printed, checks the result and writes the marker.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandrun.backends.base import Limits, Mounts, SandboxOptions
from sandrun.backends.index_proxy import IndexProxy
from sandrun.backends.local_host import python_roots, resolve_python
from sandrun.backends.run_once import run_once
from sandrun.environments import PIP_ARGS, SANDBOX_HINT, EnvironmentBuildError
from sandrun.pip_config import read_pip_config

if TYPE_CHECKING:
    from sandrun.backends.local import LocalBackend
    from sandrun.environments import Builder

BUILD_LIMITS = Limits(disk=4 << 30)
"""A build's resources: the defaults, with room in its private /tmp for downloads and compilers."""
PROBE_SECONDS = 60.0
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
ARCHIVES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz", ".tar")
RESULT = "sandrun-build-result: "  # the same as build_inside.RESULT, which cannot import anything of ours


def run_probe(sandbox: LocalBackend, argv: Sequence[str]) -> tuple[int | None, str]:
    """Run `argv` (an interpreter and its arguments) in a sandbox with nothing extra: status and stdout."""
    done = run_once(sandbox, argv, SandboxOptions(), time.monotonic() + PROBE_SECONDS)
    return done.status, done.output.decode(errors="replace")


def build_in_sandbox(builder: Builder, sandbox: LocalBackend, host_pip: bool) -> list[str]:
    """Build `builder.target` inside `sandbox`; what got installed (`name==version`, as pip left it).
    `host_pip`: sandrun's own pip can install for the base interpreter (else the venv gets its own).

    Raises `EnvironmentBuildError` naming the packages when a step fails, the deadline passes, or the build
    left an interpreter that is not the one asked for.
    """
    spec, target = builder.spec, builder.target
    packages = spec.requirements
    local = [Path(p) for p in packages if os.path.isabs(p) and os.path.exists(p)]
    for path in local:
        check_local_package(path, packages)
    settings = read_pip_config()
    pip_entry = pip_home() if host_pip else None
    target.mkdir()
    target.chmod(0o755)  # whatever the umask: later sandboxes run as other uids
    base_roots = python_roots(spec.python)
    sockets = Path(tempfile.mkdtemp(prefix="sandrun-index-"))
    try:
        sockets.chmod(0o711)  # the sandbox's uid may be another; the socket's name is not guessable
        proxy = IndexProxy(sockets / f"{secrets.token_hex(8)}.sock", settings.allow)
        mounts = Mounts(
            read_only=(*base_roots, *([pip_entry] if pip_entry else []), *settings.paths, *local),
            writable=target,
            proxy_socket=proxy.path if packages else None,
        )
        options = SandboxOptions(env=settings.env, mounts=mounts, limits=BUILD_LIMITS)
        config = {
            "base": resolve_python(spec.python),  # inside, the work directory is not sandrun's
            "target": str(target),
            "packages": list(packages),
            "copy": [str(p) for p in local if p.is_dir()],
            "pip": str(pip_entry) if pip_entry else None,
            "pip_args": [*PIP_ARGS, "--no-cache-dir"],
            "proxy": str(proxy.path) if packages else None,
            "limits": sandbox.driver_limits(options),
        }
        source = Path(__file__).with_name("build_inside.py").read_text(encoding="utf-8")
        argv = [sys.executable, "-I", "-c", source, json.dumps(config)]
        with proxy:
            done = run_once(sandbox, argv, options, builder.deadline)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    output = done.output.decode(errors="replace")
    if done.status not in (None, 0) and RESULT not in output:
        output += f"\n{done.diagnostics.strip()}"  # the sandbox itself failed: say what it said
    return check_result(builder, done.status, output, proxy.refused, base_roots)


def check_result(
    builder: Builder, status: int | None, output: str, refused: list[str], base_roots: list[Path]
) -> list[str]:
    """What got installed, from the build's last RESULT line; EnvironmentBuildError when it failed."""
    packages = builder.spec.requirements
    named = ", ".join(packages) or "the recipe"
    lines = output.strip().splitlines()
    results = [line[len(RESULT) :] for line in lines if line.startswith(RESULT)]
    tail = "\n".join([line for line in lines if not line.startswith(RESULT)][-20:])
    if refused:
        tail += "\nthe package index proxy refused: " + "; ".join(dict.fromkeys(refused))
    if status is None:
        raise EnvironmentBuildError(
            f"building the environment for {named} took longer than {builder.timeout:g} s",
            hint="check the network, and whether the packages are unusually large to download or build",
            packages=packages,
        )
    result: dict[str, Any] = {}
    with contextlib.suppress(ValueError, IndexError):
        result = json.loads(results[-1])
    if status != 0 or not isinstance(result.get("installed"), list):
        what = result.get("failed") or f"building the environment for {named} in a sandbox"
        code = result.get("status", status)
        raise EnvironmentBuildError(
            f"{what} failed (exit status {code}):\n{tail}", SANDBOX_HINT, packages, output=tail
        )
    python = builder.target / "bin" / "python"
    why = ""
    try:
        roots = python_roots(str(python))
    except Exception as exc:  # any refusal means the same: not the interpreter asked for
        roots, why = [], f": {exc}"
    if not roots or not set(roots) <= {builder.target, *base_roots}:
        found = f" (it needs {', '.join(map(str, roots))})" if roots else why
        raise EnvironmentBuildError(
            f"the build for {named} left an interpreter that is not a venv of {builder.spec.python}{found}",
            hint="a package's build changed the environment's interpreter or pyvenv.cfg: it is not used",
            packages=packages,
        )
    return [str(item) for item in result["installed"]]


def check_local_package(path: Path, packages: Sequence[str]) -> None:
    """A local package must be a project directory or a package archive: nothing else is bound in."""
    if path.is_dir() and any((path / name).is_file() for name in PROJECT_FILES):
        return
    if path.is_file() and path.name.endswith(ARCHIVES):
        return
    raise EnvironmentBuildError(
        f"{path} is neither a Python project (a directory with {' or '.join(PROJECT_FILES)}) nor a package "
        "archive, so it is not given to the build",
        hint="name a project directory, a wheel or an sdist in `packages:`",
        packages=packages,
    )


def pip_home() -> Path | None:
    """The sys.path entry that holds sandrun's pip (bound read-only into the build)."""
    found = importlib.util.find_spec("pip")
    if found is None or not found.origin:
        return None
    return Path(found.origin).parent.parent

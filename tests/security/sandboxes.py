"""Helpers for the security tests: running cells, reading results back, probing host /proc, the CLI."""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandrun.backends import get_backend
from sandrun.session import CellOutcome, CellRequest, Session

REPO = Path(__file__).resolve().parents[2]
"""The project's directory on the host, which no sandbox may see (whatever its own work directory is)."""
IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="proves what happens when sandrun runs as root (uid 0)")


PROTOCOL_FDS = """
import fcntl, os

def protocol_fds():
    # The driver's private copies of the channel to the host: the pipes whose other end is not in this
    # process (the capture pipes have both ends here; fd 0 is an empty pipe). Returns (requests, events).
    pipes = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fd, target = int(name), os.readlink(f"/proc/self/fd/{name}")
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            continue
        if target.startswith("pipe:") and fd > 2:
            pipes.setdefault(target, {})[mode] = fd
    lone = [ends for ends in pipes.values() if len(ends) == 1]
    (requests,) = [ends[os.O_RDONLY] for ends in lone if os.O_RDONLY in ends]
    (events,) = [ends[os.O_WRONLY] for ends in lone if os.O_WRONLY in ends]
    return requests, events
"""
"""Cell code defining `protocol_fds()`, for attacks on the driver's own channel to the host."""


LARGE_CELL = "big = " + repr("x" * (256 << 10))
"""A cell of 256 KiB: four times what a pipe holds."""
PLUG_REQUESTS = (
    PROTOCOL_FDS
    + """
requests, _ = protocol_fds()
kept = os.dup(requests)  # the host's pipe keeps a reader: its writes block instead of failing
plug_r, plug_w = os.pipe()
os.dup2(plug_r, requests)
'plugged'
"""
)
"""A cell that plugs the driver's request channel: the driver never reads the host's requests again."""


@functools.cache
def local_unavailable() -> str | None:
    """Why the `local` backend cannot sandbox here, or None (probed once per test run)."""
    return get_backend("local").unavailable_reason()


StartSandbox = Callable[..., Session]
"""The `sandbox` fixture: start a session with `SandboxOptions(**kwargs)`."""


def run(session: Session, code: str, timeout: float = 10, grace: float = 1.0) -> CellOutcome:
    """Run dedented `code` as one cell of `recipe.py`."""
    return session.run(CellRequest(textwrap.dedent(code), "recipe.py", 1, timeout), grace)


def value(outcome: CellOutcome) -> Any:
    """The cell's trailing expression, evaluated back from its repr (the cell must have succeeded)."""
    assert outcome.status == "ok", (outcome.status, outcome.error)
    assert outcome.value is not None, "the cell has no trailing expression"
    return ast.literal_eval(outcome.value)


def stdout(outcome: CellOutcome) -> str:
    """Everything the cell printed on stdout."""
    return "".join(chunk.text for chunk in outcome.outputs if chunk.stream == "stdout")


def host_pids_with(needle: bytes) -> list[int]:
    """PIDs of live host processes whose command line contains `needle` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def wait_for_pids(needle: bytes, count: int, seconds: float) -> list[int]:
    """Poll until `count` host processes carry `needle` (a daemon's exec may lag its parent's exit)."""
    deadline = time.monotonic() + seconds
    while len(found := host_pids_with(needle)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def wait_until_gone(needle: bytes, seconds: float) -> list[int]:
    """Poll until no host process carries `needle` or `seconds` pass; the survivors."""
    deadline = time.monotonic() + seconds
    while (alive := host_pids_with(needle)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def kill_leftovers(needle: bytes) -> None:
    """SIGKILL, by pid, processes a test had a sandbox start that escaped it, so none outlive the test."""
    for pid in host_pids_with(needle):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def status_fields(text: str) -> dict[str, str]:
    """`/proc/PID/status` as a dict of field -> value."""
    fields = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields[key] = rest.strip()
    return fields


@dataclass
class CliRun:
    """What `sandrun run` did: its exit code, both streams, and the JSON transcript if it printed one."""

    returncode: int
    stdout: str
    stderr: str
    transcript: dict[str, Any] | None


def sandrun_cli(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, backend: str = "local"
) -> CliRun:
    """Run `python -m sandrun run ARGS --backend BACKEND --format json` in a real process."""
    if backend == "local" and (reason := local_unavailable()):
        pytest.skip(f"the local backend is unavailable: {reason}")
    proc = subprocess.run(
        [sys.executable, "-m", "sandrun", "run", *map(str, args), "--backend", backend, "--format", "json"],
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    transcript = json.loads(proc.stdout) if proc.stdout.strip() else None
    return CliRun(proc.returncode, proc.stdout, proc.stderr, transcript)

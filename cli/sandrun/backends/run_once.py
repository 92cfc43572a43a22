"""One command run to its end in a `local` sandbox, its output collected: how sandrun builds environments
for `packages:` and asks a recipe's `python:` its version without running it on the host."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sandrun.backends.base import SandboxOptions
from sandrun.backends.local import LocalBackend

MAX_OUTPUT = 1 << 20
"""Bytes of output kept (the end of it): enough for an error message, bounded whatever a build prints."""


@dataclass(frozen=True)
class Finished:
    """How the command ended: its exit status (None: stopped at the deadline), what it printed, and what
    the sandbox itself said on its stderr."""

    status: int | None
    output: bytes
    diagnostics: str


def run_once(
    backend: LocalBackend, argv: Sequence[str], options: SandboxOptions, deadline: float
) -> Finished:
    """Start `argv` in a sandbox with `options` and wait for it until `deadline` (time.monotonic()).

    The sandbox, and everything started in it, is gone when this returns. Raises `BackendError` when the
    sandbox cannot be made (for instance, an interpreter that does not look like one).
    """
    channel = backend.start(argv, options)
    output = bytearray()
    try:
        if channel.proc.stdin is not None:
            channel.proc.stdin.close()  # nothing is sent: a step that reads its input gets EOF at once
        while (left := deadline - time.monotonic()) > 0:
            chunk = channel.receive(left)
            if chunk == b"":
                break
            if chunk:
                output += chunk
                del output[:-MAX_OUTPUT]
        else:
            return Finished(None, bytes(output), "")
        try:
            channel.proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            return Finished(None, bytes(output), "")
        return Finished(channel.returncode, bytes(output), channel.diagnostics())
    finally:
        channel.close()

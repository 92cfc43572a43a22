"""The `modal` backend: one Modal sandbox (gVisor) per recipe run, in the cloud.

Written against the modal client 1.6 (see pyproject.toml). The client's traps, and how this module meets
them:
- all exec arguments together must stay under 64 KiB: the driver arrives through stdin (the session's
  bootstrap), so the exec line is a few hundred bytes;
- `StreamWriter.write` sends nothing until `drain()`: every `send` drains, in a thread it stops waiting
  for at its deadline (a sandbox that stops reading would make `drain()` wait forever);
- iterate ONE stdout iterator, in bytes mode, which yields chunks, not lines: a reader thread owns it and
  the session does its own line splitting;
- stderr is read by its own thread (its tail explains a failed start) so that it can never block;
- an exec timeout shows up as return code -1, not as an exception: the exec gets no timeout of its own, the
  sandbox's `timeout` and `idle_timeout` are the backstops;
- without credentials the client fails at its first call, and an unreachable server makes it wait about a
  minute: credentials are checked before any network call, and the first call is bounded;
- a client call that fails in a reader thread (the output stream, `wait()`) would die with that thread:
  the failure is kept and raised by the next `receive`, so the user reads its cause.

`modal` is imported here only, when this backend is used: the local path never pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import os
import queue
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sandrun.backends.base import SandboxOptions
from sandrun.backends.process import open_input_file
from sandrun.errors import BackendError, UsageError

WORKDIR = "/work"
TAG = "sandrun"
"""Every sandbox sandrun creates carries this tag (value "1"), so `sandrun modal cleanup` can find it."""
DEFAULT_APP = "sandrun"
DEFAULT_CONNECT_TIMEOUT = 15.0
SANDBOX_LIFETIME = 3600
"""Seconds a sandbox may live at most, whatever happens to sandrun (Modal's own backstop)."""
IDLE_TIMEOUT = 300
"""Seconds without activity after which Modal ends a sandbox that sandrun forgot (e.g. after kill -9)."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOKEN_HELP = "create a token with `modal token new` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET)"


class ModalBackend:
    """Runs each recipe in its own Modal sandbox."""

    name = "modal"
    isolation = "modal sandbox (gVisor)"
    installs_packages = True

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})
        self.app_name = self.env.get("SANDRUN_MODAL_APP", DEFAULT_APP)
        self.connect_timeout = connect_timeout(self.env)

    def unavailable_reason(self) -> str | None:
        """Missing credentials or client, found without any network call (and without importing modal)."""
        if not has_credentials(self.env):
            return f"no Modal credentials: {TOKEN_HELP}"
        if importlib.util.find_spec("modal") is None:
            return "the modal client is not installed (pip install modal)"
        return None

    def versions(self) -> dict[str, str]:
        """The modal client's version."""
        try:
            import modal
        except ImportError:
            return {}
        return {"modal": modal.__version__}

    def driver_limits(self, options: SandboxOptions) -> dict[str, int]:
        """None: Modal limits the sandbox's memory and CPU itself."""
        return {}

    def default_python(self) -> str:
        """The interpreter of Modal's Debian image."""
        return "python3"

    def start(self, argv: Sequence[str], options: SandboxOptions) -> ModalChannel:
        """Create a sandbox for this run and exec the driver in it; the sandbox is terminated on failure."""
        reason = self.unavailable_reason()
        if reason:
            raise BackendError(reason)
        bad = [name for name in options.env if not ENV_NAME.fullmatch(name)]
        if bad:
            raise BackendError(f"Modal refuses these environment variable names: {', '.join(bad)}")
        import modal

        app = self.lookup_app(modal)
        sandbox = None
        try:
            sandbox = modal.Sandbox.create(
                app=app,
                image=image_for(modal, options),
                env={"HOME": WORKDIR, "LANG": "C.UTF-8", **options.env},
                workdir=WORKDIR,
                timeout=SANDBOX_LIFETIME,
                idle_timeout=IDLE_TIMEOUT,
                block_network=not options.network,
                memory=options.limits.memory // (1 << 20) if options.limits.memory else None,
                cpu=options.limits.cpu,
                tags={TAG: "1", "sandrun-run": secrets.token_hex(8)},
            )
            for name, source in options.files.items():
                with os.fdopen(open_input_file(Path(source), options.files_from), "rb") as reader:
                    sandbox.filesystem.write_bytes(reader.read(), f"{WORKDIR}/{name}")
            process = sandbox.exec("python3", *argv[1:], text=False)
            return ModalChannel(sandbox, process)
        except BaseException as exc:
            if sandbox is not None:
                with contextlib.suppress(Exception):
                    sandbox.terminate()
            if isinstance(exc, (KeyboardInterrupt, BackendError)):
                raise
            raise BackendError(f"Modal could not start the sandbox: {describe(exc)}") from None

    def lookup_app(self, modal: Any) -> Any:
        """The app, found or created within the connect timeout (the client alone would wait a minute)."""
        lookup = modal.App.lookup.aio(self.app_name, create_if_missing=True)
        try:
            return asyncio.run(asyncio.wait_for(lookup, self.connect_timeout))
        except (asyncio.TimeoutError, TimeoutError):
            raise BackendError(
                f"the Modal server did not answer within {self.connect_timeout:g} s",
                hint="check the network (or MODAL_SERVER_URL); SANDRUN_MODAL_CONNECT_TIMEOUT sets the wait",
            ) from None
        except Exception as exc:
            raise BackendError(f"Modal refused the connection: {describe(exc)}", hint=TOKEN_HELP) from None


def connect_timeout(env: Mapping[str, str]) -> float:
    """Seconds the first call to Modal may take: SANDRUN_MODAL_CONNECT_TIMEOUT, else the default.

    A value that is not a positive number of seconds is a `UsageError`, never silently replaced."""
    written = env.get("SANDRUN_MODAL_CONNECT_TIMEOUT")
    if written is None or not written.strip():
        return DEFAULT_CONNECT_TIMEOUT
    try:
        seconds = float(written)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise UsageError(
            f"SANDRUN_MODAL_CONNECT_TIMEOUT={written!r} is not a positive number of seconds",
            hint=f"set it to e.g. {DEFAULT_CONNECT_TIMEOUT:g} (the default), or unset it",
        )
    return seconds


def has_credentials(env: Mapping[str, str]) -> bool:
    """A token in the environment, or a token line in modal's config file."""
    if env.get("MODAL_TOKEN_ID") and env.get("MODAL_TOKEN_SECRET"):
        return True
    config = Path(env.get("MODAL_CONFIG_PATH") or Path(env.get("HOME", "~")).expanduser() / ".modal.toml")
    try:
        return "token_id" in config.read_text()
    except OSError:
        return False


def image_for(modal: Any, options: SandboxOptions) -> Any:
    """Debian slim with the recipe's Python version (`python: "3.12"`; default: this one) and packages."""
    wanted = options.python or ""
    version = wanted if re.fullmatch(r"3\.\d+", wanted) else f"{sys.version_info[0]}.{sys.version_info[1]}"
    image = modal.Image.debian_slim(python_version=version)
    return image.pip_install(*options.packages) if options.packages else image


def describe(exc: BaseException) -> str:
    """An exception from the modal client, in one line."""
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(
        ": "
    )


class ModalChannel:
    """The driver's exec in a Modal sandbox, as a byte channel."""

    def __init__(self, sandbox: Any, process: Any) -> None:
        self.sandbox = sandbox
        self.process = process
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self.stderr_tail = bytearray()
        self.closed = False
        self.killed = False
        self.exit_code: int | None = None
        self.failure: str | None = None
        """Why the output ended, when the client failed (not the sandbox): raised by `receive`."""
        self.stderr_failure: str | None = None
        """Why the stderr stream ended early, when the client failed: shown by `diagnostics`."""
        threading.Thread(target=self._pump_stdout, name="sandrun-modal-out", daemon=True).start()
        threading.Thread(target=self._pump_stderr, name="sandrun-modal-err", daemon=True).start()

    def send(self, data: bytes, timeout: float) -> bool:
        """Write and drain (the client sends nothing until drained), waiting at most `timeout` seconds.

        The client's drain waits until the sandbox has taken the data, with no deadline of its own: it runs
        in a daemon thread, which the sandbox's termination (what the session does on False) ends.
        """
        failure: list[BaseException] = []

        def write() -> None:
            try:
                self.process.stdin.write(data)
                self.process.stdin.drain()
            except Exception as exc:
                failure.append(exc)

        writer = threading.Thread(target=write, name="sandrun-modal-in", daemon=True)
        writer.start()
        deadline = time.monotonic() + timeout
        while writer.is_alive() and (left := deadline - time.monotonic()) > 0:
            writer.join(min(left, 0.25))  # short waits, so that a Ctrl-C is never left waiting
        if writer.is_alive():
            return False
        if failure:
            raise BackendError(f"the sandbox stopped reading its input: {describe(failure[0])}") from None
        return True

    def receive(self, timeout: float | None) -> bytes | None:
        """The next chunk of stdout, b"" at its end, None if nothing came within `timeout`.

        Raises `BackendError` with the cause when the output ended because the client failed (the
        stream broke, or the exit status could not be had), not because the interpreter closed it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # short waits, so that a Ctrl-C is never left waiting (see process.SIGNAL_CHECK)
            left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            try:
                chunk = self.chunks.get(timeout=max(left, 0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if not chunk and self.failure:
                self.chunks.put(b"")  # the end stays the end for a later call
                raise BackendError(self.failure)
            return chunk

    @property
    def returncode(self) -> int | None:
        """The exec's exit status once its output ended (-1: Modal's exec timeout)."""
        return self.exit_code

    def diagnostics(self) -> str:
        """The tail of what the exec wrote to its stderr, and why the client stopped reading it early."""
        text = self.stderr_tail[-4096:].decode("utf-8", "replace")
        if self.stderr_failure:
            text += ("\n" if text and not text.endswith("\n") else "") + f"({self.stderr_failure})"
        return text

    def kill(self) -> None:
        """Terminate the sandbox now (from any thread)."""
        self.killed = True  # what the client raises from now on is our own doing, not a failure
        with contextlib.suppress(Exception):
            self.sandbox.terminate()

    def close(self) -> None:
        """Terminate the sandbox; always, whatever state it is in."""
        if self.closed:
            return
        self.closed = True
        self.kill()
        with contextlib.suppress(Exception):
            self.sandbox.detach()

    def _pump_stdout(self) -> None:
        try:
            for chunk in self.process.stdout:
                self.chunks.put(as_bytes(chunk))
        except Exception as exc:
            self._failed(f"the modal client lost the interpreter's output: {describe(exc)}")
        else:
            try:
                self.exit_code = self.process.wait()
            except Exception as exc:
                self._failed(
                    f"the interpreter's output ended, and the modal client could not get its exit status: "
                    f"{describe(exc)}"
                )
        finally:
            self.chunks.put(b"")

    def _pump_stderr(self) -> None:
        try:
            for chunk in self.process.stderr:
                self.stderr_tail += as_bytes(chunk)
                del self.stderr_tail[:-65536]
        except Exception as exc:
            if not self.killed:
                self.stderr_failure = f"the modal client lost the sandbox's stderr: {describe(exc)}"

    def _failed(self, why: str) -> None:
        """Keep the client's failure for `receive`, unless sandrun itself ended the sandbox."""
        if not self.killed:
            self.failure = why


def as_bytes(chunk: bytes | str) -> bytes:
    """A chunk of a stream in bytes mode (text, should the client give text)."""
    return chunk if isinstance(chunk, bytes) else chunk.encode()


def cleanup(env: Mapping[str, str], terminate: bool = True) -> list[str]:
    """Find the sandboxes sandrun left running in its Modal app (and terminate them); their ids."""
    backend = ModalBackend(env)
    reason = backend.unavailable_reason()
    if reason:
        raise BackendError(reason)
    import modal

    app = backend.lookup_app(modal)
    found = []
    try:
        for sandbox in modal.Sandbox.list(app_id=app.app_id, tags={TAG: "1"}):
            found.append(sandbox.object_id)
            if terminate:
                sandbox.terminate()
    except Exception as exc:
        raise BackendError(f"listing Modal sandboxes failed: {describe(exc)}") from None
    return found

"""A sandbox started before the command line is even imported, so that it boots while the host reads.

`sandrun run` spends its first tenth of a second importing the command line (typer, click) and reading the
recipes, while no sandbox exists yet. When the command line asks for nothing that changes the sandbox
(`worth_starting`), the entry point starts one at once, with the default options, on the backend the run
will most likely use. The runner then gives it to the first recipe whose sandbox must look exactly like
it (`EarlySandbox.fits`: same backend and settings, same sandbox options and limits); a recipe with its own
`env:`, `files:`, `python:`, `network:` or `packages:` never gets it. It goes to one recipe at most, and
one that nobody takes is torn down (`discard`), also on Ctrl-C, SIGTERM and errors.

SANDRUN_EARLY=0 turns this off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandrun.backends.base import Backend, SandboxOptions
    from sandrun.session import Session

FLAGS = frozenset(
    {
        "--keep-going", "--no-keep-going", "--check-outputs", "--no-check-outputs", "--update", "--quiet",
        "-q", "--strict", "--no-network",
    }
)  # fmt: skip
"""Options of `sandrun run` that take no value and leave the sandbox as it is by default."""
VALUED = frozenset({"--format", "--report", "--cell-timeout", "--jobs", "-j", "--annotations", "--backend"})
"""Options of `sandrun run` that take a value and leave the sandbox as it is by default (`--backend` is
read: it picks the backend started)."""
STARTED_AHEAD = frozenset({"local", "process"})
"""Backends that are cheap to start on the off chance: local processes, nothing that costs money."""


def worth_starting(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The backend to start a sandbox on early for these command-line arguments (without the program
    name), or None when the run will not want a default sandbox there: not `run`, `--help`, an option that
    changes the sandbox, or one this function does not know."""
    if environ.get("SANDRUN_EARLY", "1") == "0" or not argv or argv[0] != "run":
        return None
    backend = environ.get("SANDRUN_BACKEND") or None
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        name, equals, value = arg.partition("=")
        if name.startswith("-j") and name[2:].isdigit():
            continue
        if name in FLAGS and not equals:
            continue
        if name not in VALUED or (name.startswith("-j") and equals):
            return None
        if not equals:
            value = next(args, "")
        if name == "--backend":
            backend = value
    from sandrun.backends import DEFAULT_BACKEND

    backend = backend or DEFAULT_BACKEND
    return backend if backend in STARTED_AHEAD else None


class EarlySandbox:
    """A sandbox started ahead with known options, waiting for the one recipe that wants exactly those."""

    def __init__(
        self, backend: Backend, options: SandboxOptions, output_limit: int, session: Session
    ) -> None:
        self.backend = backend
        self.options = options
        self.output_limit = output_limit
        self.session: Session | None = session
        """None once a recipe took it or it was discarded."""

    def fits(self, backend: Backend, options: SandboxOptions, output_limit: int) -> bool:
        """Whether a recipe that needs this backend, these options and this output limit may have it: all
        equal to what it was started with. Where no files are copied in, where they would come from does
        not matter."""
        from dataclasses import replace

        if not options.files:
            options = replace(options, files_from=None)
        same_backend = type(backend) is type(self.backend) and vars(backend) == vars(self.backend)
        return same_backend and options == self.options and output_limit == self.output_limit

    def take(self) -> Session | None:
        """The sandbox, now the caller's to close; None if it was taken or discarded before."""
        session, self.session = self.session, None
        return session

    def discard(self) -> None:
        """Tear the sandbox down unless a recipe took it. Safe to call twice."""
        session = self.take()
        if session is not None:
            session.close()
            debug("the sandbox started early was not used; torn down")


_started: EarlySandbox | None = None


def start(argv: Sequence[str], environ: Mapping[str, str]) -> EarlySandbox | None:
    """Start a sandbox with the default options if `argv` is worth it (see `worth_starting`); None when not,
    or when it could not start (the run's own start then says why)."""
    global _started
    name = worth_starting(argv, environ)
    if name is None:
        return None
    from sandrun.backends import get_backend
    from sandrun.backends.base import SandboxOptions
    from sandrun.session import DEFAULT_OUTPUT_LIMIT, Session

    try:
        backend = get_backend(name, environ)
        options = SandboxOptions()
        session = Session.launch(backend, options, DEFAULT_OUTPUT_LIMIT)
    except Exception as exc:  # the run starts its own sandbox, and reports what goes wrong then
        debug(f"no sandbox started early: {type(exc).__name__}: {exc}")
        return None
    _started = EarlySandbox(backend, options, DEFAULT_OUTPUT_LIMIT, session)
    debug(f"a {name} sandbox was started early")
    return _started


def claim() -> EarlySandbox | None:
    """The sandbox started early, for the runner; after this call, the caller must discard it if unused."""
    global _started
    early, _started = _started, None
    return early


def debug(message: str) -> None:
    """With SANDRUN_DEBUG=1, say on stderr what happened to the sandbox started early."""
    if os.environ.get("SANDRUN_DEBUG") == "1":
        print(f"sandrun: debug: {message}", file=sys.stderr, flush=True)

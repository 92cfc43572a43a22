"""Sandboxes started ahead of the recipes that will use them, so that a sandbox boots while cells run.

When several recipes run one after another (or `-j` at a time), the next recipes' sandboxes are started
while the current ones run: by the time a recipe begins, its interpreter has usually said `ready`. Each
sandbox is started for ONE recipe, with that recipe's own options, and is only ever given to that recipe:
nothing a recipe leaves behind (files in its /tmp, processes) can reach another. At most `ahead` sandboxes
wait at a time (fewer where memory is short: `affordable`); one that is never used (the run was cancelled,
or failed first) is torn down by `close`.

A sandbox the command started before it read the recipes (`sandrun.early`) is `adopt`ed: it waits for the
first recipe whose sandbox must look exactly like it, and is never started again for that recipe.

A recipe's sandbox is torn down (`retire`) in the background while the next recipe runs; `close` waits
until every teardown is complete, so nothing is left behind when the run ends.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandrun.backends.base import Backend
    from sandrun.early import EarlySandbox
    from sandrun.model import Recipe
    from sandrun.runner import RunControl, RunOptions
    from sandrun.session import Session

MEMINFO = "/proc/meminfo"
WAITING_SANDBOX_MEMORY = 16 << 20
"""What a sandbox holds while it waits for its recipe, rounded up: its interpreter, driver and reaper
have about 8 MiB of memory of their own."""

PRESTARTED_BACKENDS = frozenset({"local", "process"})
"""Backends whose sandboxes are cheap to start ahead: local processes. A remote sandbox (Modal) costs money
while it waits, so it is started only when its recipe begins."""


class Prestarter:
    """Starts the sandboxes of upcoming recipes ahead of time, each for its own recipe only. Thread-safe."""

    def __init__(
        self,
        runs: Sequence[tuple[Recipe, Backend]],
        options: RunOptions,
        ahead: int,
        control: RunControl,
    ) -> None:
        self.runs = runs
        self.options = options
        self.ahead = affordable(max(0, ahead))
        """How many sandboxes may wait, started, for their recipe at once."""
        self.control = control
        self._lock = threading.Condition()
        self._waiting: dict[int, Session] = {}
        self._launching: set[int] = set()
        """Recipes whose sandbox a thread is starting ahead right now."""
        self._begun: set[int] = set()
        """Recipes that asked for their sandbox (`take`): none is started ahead for them after that."""
        self._next = 0
        """The first recipe whose sandbox has not been considered for starting ahead yet."""
        self._closed = False
        self._teardowns: list[threading.Thread] = []

    def take(self, index: int) -> Session | None:
        """The sandbox started ahead for recipe `index` (the caller now owns it), or None. If another thread
        is starting it at this moment, waits for that (a few milliseconds) rather than starting a second."""
        with self._lock:
            self._begun.add(index)
            self._lock.wait_for(lambda: index not in self._launching)
            return self._waiting.pop(index, None)

    def adopt(self, early: EarlySandbox | None) -> None:
        """Keep a sandbox started early for the first recipe that fits it (`EarlySandbox.fits`), which then
        takes it like one started ahead; tear it down at once if none fits."""
        from sandrun.early import debug
        from sandrun.runner import sandbox_options

        if early is None:
            return
        for index, (recipe, backend) in enumerate(self.runs):
            sandbox = sandbox_options(recipe, self.options)
            if recipe.packages or not early.fits(backend, sandbox, self.options.output_limit):
                continue
            session = early.take()
            if session is None:
                return
            self.control.attach(session)
            with self._lock:
                if not self._closed:
                    self._waiting[index] = session
                    debug(f"the sandbox started early is for {recipe.path}")
                    return
            self._discard(session)
            return
        early.discard()

    def advance(self, index: int) -> None:
        """Recipe `index` has begun: start the sandboxes of the recipes after it, up to `ahead` waiting."""
        while True:
            with self._lock:
                target = max(self._next, index + 1)
                full = len(self._waiting) >= self.ahead or target > index + self.ahead
                if self._closed or self.control.cancelled.is_set() or target >= len(self.runs) or full:
                    return
                self._next = target + 1
                if target in self._waiting or target in self._begun:  # adopted, or its recipe started its own
                    continue
                self._launching.add(target)
            session: Session | None = None
            try:
                session = self._launch(target)
            finally:
                with self._lock:
                    self._launching.discard(target)
                    self._lock.notify_all()
                    if session is not None and not self._closed:
                        self._waiting[target] = session
                        session = None
            if session is not None:
                self._discard(session)  # closed while it was starting

    def retire(self, session: Session) -> None:
        """Tear down a recipe's sandbox once it is done with it, in the background (`close` waits for it).
        A shared work directory is given back to its owner before the next recipe runs in it: at once."""
        if self.options.workdir is not None:
            session.close()
            return
        teardown = threading.Thread(target=session.close, name="sandrun-teardown")
        with self._lock:
            # Started under the lock: a thread not started yet is not alive, and another recipe's retire
            # pruning the list in between would drop it, so that `close` would not wait for it.
            teardown.start()
            self._teardowns = [t for t in self._teardowns if t.is_alive()]
            self._teardowns.append(teardown)

    def close(self) -> None:
        """Tear down every sandbox started ahead that no recipe took, and wait for every teardown; no more
        sandboxes are started after this."""
        with self._lock:
            self._closed = True
            left, self._waiting = list(self._waiting.values()), {}
        for session in left:
            self._discard(session)
        with self._lock:
            teardowns = list(self._teardowns)
        for teardown in teardowns:
            teardown.join()

    def _launch(self, index: int) -> Session | None:
        """Start recipe `index`'s sandbox, or None where it is not started ahead (its own run then starts it,
        and reports what goes wrong): packages to build first, a shared work directory, a remote backend."""
        from sandrun.runner import sandbox_options
        from sandrun.session import Session

        recipe, backend = self.runs[index]
        if recipe.packages or self.options.workdir is not None or backend.name not in PRESTARTED_BACKENDS:
            return None
        started: list[Session] = []

        def follow(session: Session) -> None:
            started.append(session)
            self.control.attach(session)  # Ctrl-C from here on kills it too

        sandbox = sandbox_options(recipe, self.options)
        try:
            return Session.launch(backend, sandbox, self.options.output_limit, on_started=follow)
        except BaseException as exc:  # the launch closed it; the recipe's own start reports the problem
            for session in started:
                self.control.detach(session)
            if isinstance(exc, Exception):
                return None
            raise

    def _discard(self, session: Session) -> None:
        self.control.detach(session)
        session.close()


def affordable(wanted: int) -> int:
    """`wanted`, or fewer where memory is short: the sandboxes waiting for their recipes take at most a
    quarter of the memory the kernel says is available now. `wanted` where that cannot be read."""
    try:
        with open(MEMINFO, "rb") as meminfo:
            fields = dict(line.split(b":", 1) for line in meminfo.read().splitlines() if b":" in line)
        available = int(fields[b"MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return wanted
    return min(wanted, available // 4 // WAITING_SANDBOX_MEMORY)

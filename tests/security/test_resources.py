"""Promise 6: resources. A memory bomb gets MemoryError and the interpreter lives on; a fork bomb is capped by
max_procs while the host stays responsive; a CPU-time budget ends a runaway interpreter, with SIGXCPU named.

These run as root when the suite does (as in CI): the process cap must hold then too, which it only can
because the sandbox does not run as host uid 0 (see test_root.py).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

from sandrun.backends.base import Limits
from tests.security.sandboxes import StartSandbox, run, value

MiB = 1 << 20


def test_memory_bomb_gets_memory_error_and_the_interpreter_lives(sandbox: StartSandbox) -> None:
    session = sandbox(limits=Limits(memory=512 * MiB))
    assert run(session, "kept = 'still here'").status == "ok"
    huge = run(session, "block = bytearray(8 << 30)")
    assert huge.status == "error"
    assert huge.error is not None and huge.error.type == "MemoryError"
    growing = run(
        session,
        """
        chunks = []
        for _ in range(4096):  # 4 GiB at most, far beyond the limit
            chunks.append(bytearray(1 << 20))
        """,
    )
    assert growing.status == "error"
    assert growing.error is not None and growing.error.type == "MemoryError"
    assert value(run(session, "del chunks\nkept")) == "still here"


class HostLatency:
    """Times a trivial host command over and over, in a thread, while the sandbox misbehaves."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._measure, daemon=True)

    def _measure(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            subprocess.run(["true"], check=True, timeout=30)
            self.samples.append(time.monotonic() - started)
            self.stop.wait(0.02)

    def __enter__(self) -> HostLatency:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=35)


def test_fork_bomb_is_capped_and_the_host_stays_responsive(sandbox: StartSandbox) -> None:
    session = sandbox(limits=Limits(max_procs=64))
    bomb = """
    import errno, os, time
    children, refused, deadline = 0, None, time.monotonic() + 10
    while children < 2000 and time.monotonic() < deadline:
        try:
            pid = os.fork()
        except OSError as e:
            refused = errno.errorcode.get(e.errno, e.errno)
            break
        if pid == 0:
            time.sleep(15)  # hold the slot; killed with the sandbox long before this ends
            os._exit(0)
        children += 1
    (children, refused)
    """
    with HostLatency() as latency:
        children, refused = value(run(session, bomb, timeout=20))
        time.sleep(0.2)  # keep measuring while the children sit on their slots
    assert refused == "EAGAIN"
    assert 16 <= children < 64, children  # forking works, up to the cap (threads and init count too)
    assert latency.samples, "the host could not run a single command"
    assert max(latency.samples) < 2.0, latency.samples
    assert value(run(session, "1 + 1")) == 2  # the interpreter itself survived its own bomb


def test_cpu_time_budget_ends_a_runaway_interpreter(sandbox: StartSandbox) -> None:
    session = sandbox(limits=Limits(cpu_time=2))
    assert value(run(session, "sum(range(10**6))")) == sum(range(10**6))  # control: work within budget
    started = time.monotonic()
    outcome = run(session, "while True:\n    pass", timeout=30)
    elapsed = time.monotonic() - started
    assert outcome.status == "crashed"
    assert session.dead_reason is not None
    assert re.search(r"SIGXCPU|CPU.time", session.dead_reason), session.dead_reason
    assert elapsed < 10, f"took {elapsed:.1f} s, the cell timeout (30 s) ended it, not the budget"

"""Promise 8: protocol abuse from inside. A cell that writes garbage to the driver's private protocol fds,
closes every fd, floods its output, sends an endless line, stops itself, or signals its parent and pid 1
cannot hang or crash sandrun: the cell ends within a bounded time, with a clear reason when the sandbox had to
be given up (`Session.dead_reason`), and `Session.close()` returns promptly.

Not tested, because not promised (README): a cell runs in the driver's process and can write a forged event
on the protocol fd, so a hostile recipe can lie about its own results.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from sandrun.session import CellOutcome, Session
from tests.security.sandboxes import PROTOCOL_FDS, StartSandbox, run, stdout, value

T = TypeVar("T")
BOUND = 5.0
"""Seconds any of these attacks may take to be dealt with (the cells' own timeouts are shorter)."""


FIND_PROTOCOL_OUT = (
    PROTOCOL_FDS
    + """
def protocol_out():
    return protocol_fds()[1]
"""
)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def attack(session: Session, code: str, timeout: float = 2, grace: float = 0.5) -> CellOutcome:
    """Run the attack (dedented, after `FIND_PROTOCOL_OUT`); it must end within `BOUND` seconds."""
    cell = FIND_PROTOCOL_OUT + textwrap.dedent(code)
    outcome, elapsed = timed(lambda: run(session, cell, timeout=timeout, grace=grace))
    assert elapsed < BOUND, f"the cell took {elapsed:.1f} s to end"
    return outcome


def closes_promptly(session: Session) -> None:
    _, elapsed = timed(session.close)
    assert elapsed < BOUND, f"close() took {elapsed:.1f} s"


def test_garbage_on_the_protocol_fds(sandbox: StartSandbox) -> None:
    session = sandbox()
    outcome = attack(
        session,
        """
        import os
        for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
            if fd > 2:
                try:
                    os.write(fd, b"not json\\n")
                except OSError:
                    pass
        """,
    )
    assert outcome.status == "crashed"
    assert session.dead_reason is not None and "protocol" in session.dead_reason
    assert outcome.error is not None and outcome.error.message == session.dead_reason
    closes_promptly(session)


def test_closing_every_fd(sandbox: StartSandbox) -> None:
    session = sandbox()
    outcome = attack(session, "import os\nos.closerange(3, 1024)")
    assert outcome.status in ("crashed", "error")
    if outcome.status == "crashed":
        assert session.dead_reason, "a crash must say why"
    closes_promptly(session)


def test_endless_line_on_the_protocol_fd(sandbox: StartSandbox) -> None:
    session = sandbox()
    outcome = attack(
        session,
        """
        import os
        out = protocol_out()
        chunk = b"x" * (1 << 20)
        for _ in range(64):  # 64 MiB without a newline, more than the host buffers for one line
            os.write(out, chunk)
        """,
        timeout=10,
    )
    assert outcome.status == "crashed"
    assert session.dead_reason is not None and "longer than" in session.dead_reason
    closes_promptly(session)


def test_output_flood_is_capped(sandbox: StartSandbox) -> None:
    session = sandbox()
    outcome = attack(
        session,
        """
        import os, sys
        block = b"y" * (1 << 16)
        for _ in range(256):  # 16 MiB at the fd level
            os.write(1, block)
        print("z" * (8 << 20))  # and 8 MiB through sys.stdout
        """,
        timeout=10,
    )
    assert outcome.status == "ok"
    text = stdout(outcome)
    assert len(text.encode()) <= session.output_limit + 200  # the limit and the marker saying what was cut
    assert "not shown" in text
    assert value(run(session, "'alive'")) == "alive"
    closes_promptly(session)


@pytest.mark.parametrize("target", ["os.getppid()", "1"])
def test_killing_the_parent_or_pid_1(sandbox: StartSandbox, target: str) -> None:
    session = sandbox()
    outcome = attack(session, f"import os, signal, time\nos.kill({target}, signal.SIGKILL)\ntime.sleep(0.1)")
    assert outcome.status in ("ok", "crashed")
    if outcome.status == "ok":  # pid 1 of a PID namespace ignores SIGKILL from inside: nothing happened
        assert value(run(session, "'alive'")) == "alive"
    else:
        assert session.dead_reason
    closes_promptly(session)


def test_stopping_itself_ends_at_the_deadline(sandbox: StartSandbox) -> None:
    session = sandbox()
    outcome = attack(session, "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)", timeout=1, grace=0.5)
    assert outcome.status == "timeout"
    assert session.dead_reason is not None and "timeout" in session.dead_reason
    closes_promptly(session)

"""The host never waits on a sandbox without a deadline. A cell that plugs the driver's request channel
(`os.dup2` of a pipe nobody writes onto it, keeping the real one open so that the host gets no broken pipe)
makes the next request wait forever in the host's write once it is larger than a pipe holds (64 KiB). The
write has the cell's deadline (its timeout plus the grace): the cell is a timeout, the sandbox is killed,
later cells are not run and `sandrun run` exits 3.

Controls: the same large cell runs in a sandbox that was not plugged, and after the plug a small request
(which fits in the pipe) gets no answer, so the plug really stops the driver from reading.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.security.sandboxes import LARGE_CELL as LARGE
from tests.security.sandboxes import PLUG_REQUESTS as PLUG
from tests.security.sandboxes import StartSandbox, run, sandrun_cli, value

BOUND = 10.0
"""Seconds the attacked cell may take at most (its own timeout is 2 s, the grace 0.5 s)."""


@pytest.mark.parametrize("backend", ["local", "process"])
def test_plugged_request_channel_ends_the_cell_at_its_deadline(sandbox: StartSandbox, backend: str) -> None:
    control = sandbox(backend)
    assert run(control, LARGE).status == "ok"  # control: the size alone is fine

    session = sandbox(backend)
    assert value(run(session, PLUG)) == "plugged"
    watchdog = threading.Timer(BOUND, session.interrupt)  # without deadlines: a failure, not a stuck test
    watchdog.start()
    started = time.monotonic()
    try:
        outcome = run(session, LARGE, timeout=2, grace=0.5)
    finally:
        watchdog.cancel()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"the host waited {elapsed:.1f} s"
    assert outcome.status == "timeout"
    assert session.dead_reason is not None and "did not take the cell's code" in session.dead_reason
    assert session.channel.returncode is not None  # the sandbox was killed


def test_after_the_plug_a_small_request_goes_unanswered(sandbox: StartSandbox) -> None:
    session = sandbox()
    assert value(run(session, PLUG)) == "plugged"
    outcome = run(session, "1 + 1", timeout=1, grace=0.5)
    assert outcome.status == "timeout"
    assert session.dead_reason is not None and "ignored its 1 s timeout" in session.dead_reason


def test_plugged_run_exits_3_with_later_cells_not_run(tmp_path: Path) -> None:
    recipe = tmp_path / "plug.py"
    cells = [PLUG, LARGE, "print('never')"]
    recipe.write_text("".join(f"# %%\n{cell.strip()}\n\n" for cell in cells))
    started = time.monotonic()
    result = sandrun_cli(recipe, "--cell-timeout", "2", cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert result.returncode == 3, result.stderr
    assert result.transcript is not None
    statuses = [cell["status"] for cell in result.transcript["cells"]]
    assert statuses == ["passed", "timeout", "not_run"], statuses

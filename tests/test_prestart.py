"""Sandboxes started ahead of their recipes: each recipe gets the one started for it (never another
recipe's), one never used is torn down, and Ctrl-C leaves no process of any of them behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandrun.backends import get_backend
from sandrun.backends.base import Backend
from sandrun.model import Recipe, RunStatus
from sandrun.prestart import Prestarter, affordable
from sandrun.readers import load_recipe
from sandrun.runner import RunControl, RunListener, RunOptions, run_many
from sandrun.session import Session
from tests.processes import descendants, still_running, wait_for_tree
from tests.security.sandboxes import local_unavailable

BACKENDS = ["process", "local"]


def needs(backend: str) -> None:
    if backend == "local" and (reason := local_unavailable()):
        pytest.skip(f"the local backend is unavailable: {reason}")


def recipes(folder: Path, count: int, backend: str) -> list[tuple[Recipe, Backend]]:
    """`count` recipes, each with its own `env` (WHO=its number), printing WHO and their interpreter pid."""
    folder.mkdir(exist_ok=True)
    runs = []
    for i in range(count):
        path = folder / f"r{i:02d}.yaml"
        path.write_text(f"env:\n  WHO: '{i}'\ncells:\n  - import os; print(os.environ['WHO'], os.getpid())\n")
        runs.append((load_recipe(path), get_backend(backend)))
    return runs


def silent(recipe: Recipe) -> RunListener | None:
    return None


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return ") Z" not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("jobs", [1, 2])
def test_each_recipe_runs_in_the_sandbox_started_for_it(
    tmp_path: Path, backend: str, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs(backend)
    ahead: list[Session] = []
    launch = Prestarter._launch

    def counted(self: Prestarter, index: int) -> Session | None:
        session = launch(self, index)
        if session is not None:
            ahead.append(session)
        return session

    monkeypatch.setattr(Prestarter, "_launch", counted)
    transcripts = run_many(recipes(tmp_path, 5, backend), RunOptions(), jobs, silent, RunControl())
    assert [t.status for t in transcripts] == [RunStatus.PASSED] * 5
    printed = [t.results[0].stdout.split() for t in transcripts]
    assert [who for who, _ in printed] == ["0", "1", "2", "3", "4"]  # each its own env: its own sandbox
    if backend == "process":
        assert len({pid for _, pid in printed}) == 5
    assert len(ahead) >= 3  # most sandboxes were started ahead, while an earlier recipe ran
    assert all(session.channel.returncode is not None for session in ahead)  # and all are gone


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sandbox_started_ahead_and_never_used_is_torn_down(tmp_path: Path, backend: str) -> None:
    needs(backend)
    runs = recipes(tmp_path, 3, backend)
    control = RunControl()
    ahead = Prestarter(runs, RunOptions(), 2, control)
    ahead.advance(0)  # recipe 0 begins: the sandboxes of recipes 1 and 2 start
    waiting = [session for session in (ahead._waiting.get(1), ahead._waiting.get(2)) if session]
    assert len(waiting) == 2
    for session in waiting:
        session.wait_ready()  # they really are up
    pids = [session.channel.proc.pid for session in waiting]  # type: ignore[attr-defined]
    assert all(alive(pid) for pid in pids)
    ahead.close()
    assert not any(alive(pid) for pid in pids)
    assert all(session.channel.returncode is not None for session in waiting)
    assert ahead.take(1) is None and ahead.take(2) is None
    ahead.advance(1)  # closed: nothing more is started
    assert not ahead._waiting
    assert not control._sessions  # nothing left for Ctrl-C to chase


def test_with_two_jobs_every_sandbox_started_ahead_is_used_and_the_pool_keeps_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two recipes at once: a recipe may begin while (or before) its sandbox is being started ahead by the
    other worker. It must then get that sandbox, not start a second one and leave the first waiting: a
    sandbox left waiting holds a place in the pool, and with `ahead` of them nothing more is started."""
    launched: list[int] = []
    launch = Prestarter._launch

    def slow(self: Prestarter, index: int) -> Session | None:
        time.sleep(0.02)  # widens the window in which the recipe itself may begin
        session = launch(self, index)
        if session is not None:
            launched.append(index)
        return session

    monkeypatch.setattr(Prestarter, "_launch", slow)
    left: list[list[int]] = []
    close = Prestarter.close

    def recorded(self: Prestarter) -> None:
        left.append(sorted(self._waiting))
        close(self)

    monkeypatch.setattr(Prestarter, "close", recorded)
    transcripts = run_many(recipes(tmp_path, 12, "process"), RunOptions(), 2, silent, RunControl())
    assert [t.status for t in transcripts] == [RunStatus.PASSED] * 12
    assert left == [[]]  # every sandbox started ahead was taken by its recipe
    assert len(launched) >= 8  # and the pool went on starting them to the end
    assert max(launched) >= 10


def test_a_recipe_that_began_gets_no_sandbox_started_after_it_and_waits_for_one_being_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = recipes(tmp_path, 4, "process")
    ahead = Prestarter(runs, RunOptions(), 3, RunControl())
    assert ahead.take(2) is None  # recipe 2 began on its own
    ahead.advance(0)
    assert sorted(ahead._waiting) == [1, 3]  # none for recipe 2
    ahead.close()

    ahead = Prestarter(runs, RunOptions(), 1, RunControl())
    launch = Prestarter._launch
    entered = threading.Event()

    def slow(self: Prestarter, index: int) -> Session | None:
        entered.set()
        time.sleep(0.3)
        return launch(self, index)

    monkeypatch.setattr(Prestarter, "_launch", slow)
    starter = threading.Thread(target=ahead.advance, args=(0,))
    starter.start()
    assert entered.wait(10)
    taken = ahead.take(1)  # asked while its sandbox is being started: waits for it
    starter.join()
    try:
        assert taken is not None
        assert not ahead._waiting
    finally:
        if taken is not None:
            taken.close()
        ahead.close()


@pytest.mark.parametrize(
    ("available_kib", "ahead"), [(64 * 1024 * 1024, 2), (256 * 1024, 2), (96 * 1024, 1), (32 * 1024, 0)]
)
def test_fewer_sandboxes_wait_where_memory_is_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, available_kib: int, ahead: int
) -> None:
    """The machine's memory cannot be made short for real here: the kernel's report of it is (a copy of
    /proc/meminfo with another MemAvailable)."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       {available_kib * 2} kB\nMemAvailable:   {available_kib} kB\n")
    monkeypatch.setattr("sandrun.prestart.MEMINFO", str(meminfo))
    runs = recipes(tmp_path / "recipes", 4, "process")
    starter = Prestarter(runs, RunOptions(), 2, RunControl())
    assert starter.ahead == ahead
    starter.advance(0)
    try:
        assert len(starter._waiting) == ahead
    finally:
        starter.close()


def test_memory_that_cannot_be_read_does_not_stop_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandrun.prestart.MEMINFO", "/nonexistent/meminfo")
    assert affordable(3) == 3
    monkeypatch.setattr("sandrun.prestart.MEMINFO", "/proc/self/status")  # no MemAvailable line
    assert affordable(3) == 3


def test_no_sandbox_is_started_ahead_for_a_shared_workdir_or_packages(tmp_path: Path) -> None:
    runs = recipes(tmp_path, 3, "process")
    ahead = Prestarter(runs, RunOptions(workdir=tmp_path), 2, RunControl())
    ahead.advance(0)
    assert not ahead._waiting
    ahead.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_with_sandboxes_started_ahead_leaves_no_process_behind(tmp_path: Path, backend: str) -> None:
    needs(backend)
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "r0.yaml").write_text("cells:\n  - import time; time.sleep(60)\n")
    for i in (1, 2, 3):
        (folder / f"r{i}.yaml").write_text("cells:\n  - print('never')\n")
    report = tmp_path / "all.json"
    command = [sys.executable, "-m", "sandrun", "run", str(folder), "-j", "1", "--backend", backend]
    proc = subprocess.Popen([*command, "--report", str(report)], stderr=subprocess.PIPE, text=True)
    try:
        # recipe 0's interpreter, and the ones started ahead for recipes 1 and 2, each under its sandbox
        tree = wait_for_tree(proc.pid, 6)
        time.sleep(0.5)  # recipe 0 is in its sleep; the two sandboxes started ahead wait for their recipes
        tree |= descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert len(tree) >= 6, tree
    assert still_running(tree) == []
    assert [t["status"] for t in json.loads(report.read_text())] == ["interrupted"] * 4


def test_descendants_sees_a_child_and_still_running_a_live_one() -> None:
    """Control for the test above: the process census finds live children and reports them as running."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = descendants(os.getpid())
        assert child.pid in tree
        assert still_running(tree) != []
    finally:
        child.kill()
        child.wait()
    assert child.pid not in still_running(tree)
